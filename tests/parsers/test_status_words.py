"""Status words as reports write them map consistently; negations never read as the opposite."""
import pytest

from backend.app.parsers.base import FAILED, SUCCESS, WARNING, status_from_word


@pytest.mark.parametrize("word,expected", [
    ("Not successful", FAILED), ("Nicht erfolgreich", FAILED), ("Niet geslaagd", FAILED),
    ("Not completed", FAILED), ("Job ended: not successfully completed", FAILED),
    ("Stopped", FAILED), ("Timed out", FAILED), ("Interrupted", FAILED), ("Unterbrochen", FAILED),
    ("Onderbroken", FAILED), ("Geannuleerd", FAILED), ("Did not start", FAILED),
    ("Completed without warnings", SUCCESS), ("Completed with 0 warnings", SUCCESS),
    ("Abgeschlossen mit 0 Fehlern", SUCCESS), ("Success (0 errors)", SUCCESS),
    ("Erfolg", SUCCESS), ("Succes", SUCCESS), ("Succesvol", SUCCESS),
    ("Completed with errors", WARNING), ("Voltooid met waarschuwingen", WARNING),
    ("Teilweise erfolgreich", WARNING), ("Failed", FAILED), ("Fehlgeschlagen", FAILED), ("Mislukt", FAILED),
])
def test_status_word(word, expected):
    assert status_from_word(word) == expected


@pytest.mark.parametrize("word", ["Pending", "Running", "In progress", "Unknown", ""])
def test_no_result_yet_is_no_status(word):
    assert status_from_word(word) is None
