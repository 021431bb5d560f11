"""The sample report mails the tests use, all inside the repository.

``tests/samples/emails`` is a copy of the team's shared sample corpus (``other/`` and ``veeam/``;
docs/development.md, "The database of `make test`"), so the suite needs nothing beside the repository;
``tests/parsers/samples`` holds the parser tests' own samples. Both use invented names only.
`make check-parsers` still checks the shared corpus itself where it lies beside the clone.
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "samples" / "emails"  # the copy of the shared corpus
PARSER_SAMPLES = HERE / "parsers" / "samples"


def corpus_mail(name: str) -> bytes:
    """The raw bytes of ``name`` (e.g. "v03_vbr_backup_failed.eml") from the corpus."""
    return next(CORPUS.rglob(name)).read_bytes()
