"""The one LIKE-escaping rule: what a user types is searched for literally (% and _ are no wildcards)."""
from sqlalchemy import select

from backend.app.extensions import db
from backend.app.models import Customer
from backend.app.services.search import contains_text, escape_like, starts_with

from ..conftest import make_customer


def test_wildcards_and_the_escape_character_are_escaped():
    assert escape_like("100%_sure\\") == "100\\%\\_sure\\\\"
    assert escape_like("plain") == "plain"


def test_a_search_matches_the_typed_characters_only(app):
    for name in ("Acme 100% Backup", "Acme 1000 Backup", "Under_score", "Underscore"):
        make_customer(name)
    db.session.flush()

    def names(condition):
        return sorted(db.session.execute(select(Customer.name).where(condition)).scalars())

    assert names(contains_text([Customer.name], "100%")) == ["Acme 100% Backup"]
    assert names(contains_text([Customer.name], "under_")) == ["Under_score"]
    assert names(contains_text([Customer.name], "ACME")) == ["Acme 100% Backup", "Acme 1000 Backup"]
    assert names(starts_with(Customer.name, "Under_")) == ["Under_score"]
    assert names(starts_with(Customer.name, "under")) == []  # a prefix is case-sensitive
