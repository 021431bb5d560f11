"""GET /health: 200 with the database up, 503 with it down (no stack trace)."""
from backend.app import create_app


def test_health_ok(client):
    r = client.get("/health")
    assert r.status_code == 200 and r.json["status"] == "ok"


def test_health_503_when_database_unreachable(tmp_path):
    # A port where nothing listens: the database is unreachable.
    app = create_app({"TESTING": True, "RUN_MIGRATIONS": False, "BACKGROUND_JOBS": False,
                      "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2",
                      "SECRET_KEY": "x" * 32})
    r = app.test_client().get("/health")
    assert r.status_code == 503
    assert r.json["status"] == "error"


def test_pages_show_a_clear_message_when_the_database_is_down():
    app = create_app({"TESTING": True, "RUN_MIGRATIONS": False, "BACKGROUND_JOBS": False,
                      "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2",
                      "SECRET_KEY": "x" * 32})
    r = app.test_client().get("/auth/login")
    assert r.status_code == 503
    text = r.get_data(as_text=True)
    assert "database does not answer" in text and "Traceback" not in text


def test_a_full_database_disk_is_named_in_the_error_answer(app):
    from backend.app.errors import database_down
    from tests.test_ingest import database_error

    with app.test_request_context("/customers/new", method="POST", headers={"Accept": "application/json"}):
        answer, code = database_down(database_error("disk_full"))
    assert code == 503
    assert answer.json["message"].startswith("The database's disk is full. Nothing was saved; free space on the")
