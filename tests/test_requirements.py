"""The pinned requirements: the image installs only what the app uses, every line is pinned, and
what only the tests use lives in requirements-dev.txt."""
from __future__ import annotations

import ast
import re
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNTIME = REPO / "containers" / "backupchecks" / "requirements.txt"
DEV = REPO / "requirements-dev.txt"
SRC = REPO / "containers" / "backupchecks" / "src"
# Used without an import in the app's code.
NOT_IMPORTED = {"gunicorn": "the image's web server (containers/backupchecks/gunicorn.conf.py)",
                "psycopg": "SQLAlchemy's PostgreSQL driver (postgresql+psycopg://)",
                "tzdata": "zoneinfo's data where the system has none"}


def requirements(path: Path) -> dict[str, str]:
    """{normalised distribution name: pinned version} of a requirements file (nested -r skipped)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]+\])?==([^\s;]+)", line)
        assert m, f"{path.name}: not pinned with ==: {line!r}"
        out[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(3)
    return out


def imported_top_level_modules(root: Path) -> set[str]:
    names = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_every_runtime_requirement_is_used_by_the_app():
    by_module = packages_distributions()
    used = set()
    for module in imported_top_level_modules(SRC):
        used.update(re.sub(r"[-_.]+", "-", d).lower() for d in by_module.get(module, []))
    unused = sorted(set(requirements(RUNTIME)) - used - set(NOT_IMPORTED))
    assert unused == [], f"in the image but never imported by the app (move to requirements-dev.txt?): {unused}"


def test_dev_requirements_include_the_runtime_ones_and_add_only_pinned_tools():
    assert "-r containers/backupchecks/requirements.txt" in DEV.read_text().splitlines()
    dev, runtime = requirements(DEV), requirements(RUNTIME)
    assert not set(dev) & set(runtime), "listed twice"
    assert {"pip-audit"} <= set(dev)  # `make audit`
    assert "pyyaml" in runtime  # the users' parser rules' YAML export and import (also the compose-file tests)
