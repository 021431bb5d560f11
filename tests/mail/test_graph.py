"""GraphMailSource against the fake identity platform + Graph servers (real HTTPS sockets)."""
from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta, timezone

import pytest

from backend.app.mail import GraphConfig, GraphMailSource, MailSourceError, RemoteMessage
from tests.fakes.fake_graph import FakeGraph, make_mime
from tests.mail.conftest import graph_config

T0 = datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc)


@pytest.fixture
def big_fake(monkeypatch):
    """25 mails stored in a scrambled order, so 'oldest first' and paging both matter."""
    order = [(i * 7) % 25 for i in range(25)]
    mails = [(make_mime(f"Report {n:02d}", message_id=f"<r{n}@fake.example>"), T0 + timedelta(minutes=n))
             for n in order]
    with FakeGraph(mails) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
        yield fake


def source(fake, **overrides) -> GraphMailSource:
    return GraphMailSource(graph_config(fake, **overrides))


def error_of(call) -> MailSourceError:
    with pytest.raises(MailSourceError) as info:
        call()
    return info.value


# -- listing, paging, MIME, move -------------------------------------------------------------

def test_lists_every_message_oldest_first_across_pages(big_fake):
    messages = source(big_fake, page_size=10).list_messages()

    assert [m.subject for m in messages] == [f"Report {n:02d}" for n in range(25)]
    assert all(isinstance(m, RemoteMessage) for m in messages)
    assert messages[0].received_at == T0 and messages[0].received_at.tzinfo is not None
    assert messages[3].internet_message_id == "<r3@fake.example>"
    assert messages[0].from_address == "backup@customer.example"
    pages = [r for r in big_fake.graph_requests if r.path.endswith("/messages")]
    assert len(pages) == 3
    assert "$skiptoken" not in pages[0].query and all("$skiptoken" in p.query for p in pages[1:])
    assert pages[0].query["$select"] == "id,internetMessageId,subject,from,receivedDateTime"


def test_limit_stops_paging_early(big_fake):
    messages = source(big_fake, page_size=10).list_messages(limit=12)

    assert [m.subject for m in messages] == [f"Report {n:02d}" for n in range(12)]
    assert len([r for r in big_fake.graph_requests if r.path.endswith("/messages")]) == 2


def test_fetch_raw_returns_the_mime_bytes(fake_graph):
    src = source(fake_graph)
    first = src.list_messages()[0]

    raw = src.fetch_raw(first.source_id)

    assert raw == fake_graph.messages_in("Inbox/Backup reports")[0].mime
    assert b"Message-ID: <fake-0@fake.example>" in raw
    assert "+" in first.source_id and "=" in first.source_id  # ids needed URL-encoding


def test_move_returns_a_new_id_and_the_old_one_is_gone(fake_graph):
    src = source(fake_graph)
    first = src.list_messages()[0]

    new_id = src.mark_processed(first.source_id)

    assert new_id and new_id != first.source_id
    assert [m.id for m in fake_graph.messages_in("Inbox/Backup reports/Processed")] == [new_id]
    assert len(src.list_messages()) == 2
    assert src.fetch_raw(new_id) == fake_graph.messages_in("Inbox/Backup reports/Processed")[0].mime
    err = error_of(lambda: src.fetch_raw(first.source_id))
    assert err.code == "not_found" and err.status == 404


# -- retries -------------------------------------------------------------------------------------

def test_429_waits_for_retry_after_then_succeeds(big_fake):
    big_fake.throttle(nth=2, retry_after=1, path_contains="/messages")

    messages = source(big_fake, page_size=10).list_messages()

    assert len(messages) == 25
    pages = [r for r in big_fake.graph_requests if r.path.endswith("/messages")]
    assert [r.status for r in pages] == [200, 429, 200, 200]
    assert pages[2].at - pages[1].at >= 1.0


def test_retry_after_is_capped(fake_graph):
    fake_graph.throttle(retry_after=3600, path_contains="/messages")
    started = time.monotonic()

    assert len(source(fake_graph, max_retry_wait=0.2).list_messages()) == 3
    assert time.monotonic() - started < 3


def test_persistent_429_gives_up_after_bounded_attempts(fake_graph):
    fake_graph.throttle(retry_after=0, times=100, path_contains="/messages")

    err = error_of(source(fake_graph, max_attempts=3).list_messages)

    assert err.code == "throttled" and "429" in err.message
    assert len([r for r in fake_graph.graph_requests if r.path.endswith("/messages")]) == 3


def test_503_on_a_mime_fetch_is_retried_with_backoff(fake_graph):
    src = source(fake_graph)
    first = src.list_messages()[0]
    fake_graph.fail_mime_fetch(first.source_id, status=503, times=2)

    assert src.fetch_raw(first.source_id) == fake_graph.messages[first.source_id].mime
    fetches = [r for r in fake_graph.graph_requests if r.path.endswith("/$value")]
    assert [r.status for r in fetches] == [503, 503, 200]


def test_503_that_never_ends_becomes_unavailable(fake_graph):
    src = source(fake_graph, max_attempts=2)
    first = src.list_messages()[0]
    fake_graph.fail_mime_fetch(first.source_id, status=503, times=10)

    err = error_of(lambda: src.fetch_raw(first.source_id))

    assert err.code == "unavailable" and "503" in err.message


def test_504_on_a_move_is_not_retried(fake_graph):
    src = source(fake_graph)
    first = src.list_messages()[0]
    fake_graph.fail(504, method="POST", path_contains="/move")

    err = error_of(lambda: src.mark_processed(first.source_id))

    assert err.code == "unavailable"
    assert len([r for r in fake_graph.graph_requests if r.path.endswith("/move")]) == 1


# -- tokens ----------------------------------------------------------------------------------------

def test_one_token_request_serves_many_calls_and_sources(fake_graph):
    src = source(fake_graph)
    for message in src.list_messages():
        src.fetch_raw(message.source_id)
    second = source(fake_graph)  # same tenant/client: same msal app, same cached token
    second.folder_tree()

    assert fake_graph.token_requests == 1
    assert fake_graph.counts["discovery"] == 1
    assert len(fake_graph.graph_requests) > 5


def test_a_revoked_token_is_replaced_once(fake_graph):
    src = source(fake_graph)
    src.list_messages()
    fake_graph.revoke_tokens()

    assert len(src.list_messages()) == 3
    assert fake_graph.token_requests == 2
    assert [r.status for r in fake_graph.graph_requests].count(401) == 1


# -- actionable errors -----------------------------------------------------------------------------

def test_wrong_client_secret(fake_graph):
    wrong = "fake-wrong-" + fake_graph.client_secret[::-1]

    err = error_of(source(fake_graph, client_secret=wrong).list_messages)

    assert err.code == "invalid_secret"
    assert "AADSTS7000215" in err.message and "Client secret" in err.message
    assert wrong not in err.message and fake_graph.client_secret not in err.message


def test_expired_client_secret(fake_graph):
    fake_graph.secret_expired = True

    err = error_of(source(fake_graph).list_messages)

    assert err.code == "invalid_secret" and "expired" in err.message


def test_unknown_tenant(fake_graph):
    err = error_of(source(fake_graph, tenant_id="00000000-0000-0000-0000-000000000bad").list_messages)

    assert err.code == "unknown_tenant"
    assert "00000000-0000-0000-0000-000000000bad" in err.message and "Tenant ID" in err.message


def test_unknown_client(fake_graph):
    err = error_of(source(fake_graph, client_id="11111111-2222-3333-4444-555555555555").list_messages)

    assert err.code == "unknown_client" and "Client ID" in err.message


def test_missing_mail_permission(monkeypatch):
    with FakeGraph([make_mime()], permissions=()) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
        err = error_of(source(fake).list_messages)

    assert err.code == "access_denied" and err.status == 403
    assert "Mail.ReadWrite" in err.message and "admin consent" in err.message


def test_read_only_permission_cannot_move(monkeypatch):
    with FakeGraph([make_mime()], permissions=("Mail.Read",)) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
        src = source(fake)
        first = src.list_messages()[0]
        assert src.fetch_raw(first.source_id)
        err = error_of(lambda: src.mark_processed(first.source_id))

    assert err.code == "access_denied" and "Mail.ReadWrite" in err.message


def test_unknown_mailbox(fake_graph):
    err = error_of(source(fake_graph, mailbox="nobody@contoso.example").list_messages)

    assert err.code == "unknown_mailbox" and "nobody@contoso.example" in err.message


def test_mailbox_without_exchange_online(fake_graph):
    fake_graph.mailbox_state = "rest_disabled"

    err = error_of(source(fake_graph).list_messages)

    assert err.code == "unknown_mailbox" and "MailboxNotEnabledForRESTAPI" in err.message


def test_unknown_folder_names_the_missing_part(fake_graph):
    err = error_of(source(fake_graph, incoming_folder="Inbox/Backup reprots/New").list_messages)

    assert err.code == "unknown_folder"
    assert "'Backup reprots'" in err.message and "inside 'Inbox'" in err.message
    assert "Backup reports" in err.message  # lists what does exist


def test_unreachable_graph_host(fake_graph):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]

    err = error_of(source(fake_graph, api_base=f"https://127.0.0.1:{closed_port}/v1.0").list_messages)

    assert err.code == "unreachable" and f"127.0.0.1:{closed_port}" in err.message
    assert "GRAPH_API_BASE" in err.message  # set in the environment only, not on the Settings page


def test_unreachable_sign_in_host(fake_graph):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]

    err = error_of(source(fake_graph, authority_host=f"https://127.0.0.1:{closed_port}").list_messages)

    assert err.code == "unreachable" and "sign-in" in err.message
    assert "GRAPH_AUTHORITY_HOST" in err.message


def test_graph_that_does_not_answer_in_time(fake_graph):
    fake_graph.fail(503, path_contains="/messages", delay=1.5)

    err = error_of(source(fake_graph, timeout=0.3).list_messages)

    assert err.code == "unreachable" and "in time" in err.message


def test_untrusted_certificate_is_refused(fake_graph, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")

    err = error_of(source(fake_graph).list_messages)

    assert err.code == "unreachable" and "certificate" in err.message


# -- folders, settings page, sending ------------------------------------------------------------------

def test_folder_tree_with_children_and_paging(fake_graph):
    for n in range(105):
        fake_graph.add_folder(f"Customers/C{n:03d}")
    fake_graph.add_folder("Customers/C007/Old")

    tree = source(fake_graph).folder_tree()

    by_path = {}

    def walk(nodes):
        for node in nodes:
            assert set(node) == {"id", "display_name", "path", "children"}
            by_path[node["path"]] = node
            walk(node["children"])

    walk(tree)
    assert "Inbox/Backup reports/Processed" in by_path
    assert len(by_path["Customers"]["children"]) == 105
    assert by_path["Customers/C007/Old"]["display_name"] == "Old"
    assert by_path["Inbox"]["id"] == fake_graph.folder_by_path("Inbox").id
    child_pages = [r for r in fake_graph.graph_requests if r.path.endswith("/childFolders")
                   and "$skiptoken" in r.query]
    assert child_pages, "the 105 customer folders need a second page"


def test_resolve_folder_falls_back_to_well_known_inbox(fake_graph):
    inbox = fake_graph.folder_by_path("Inbox")
    inbox.display_name = "Postvak IN"  # a Dutch mailbox

    folder_id = source(fake_graph).resolve_folder("Inbox/Backup reports")

    assert folder_id == fake_graph.folder_by_path("Inbox/Backup reports").id


def test_test_connection_reports_every_step(fake_graph):
    report = source(fake_graph).test_connection()

    assert report["ok"] and report["token"] and report["mailbox"]
    assert report["incoming_folder_id"] == fake_graph.folder_by_path("Inbox/Backup reports").id
    assert report["processed_folder_id"] == fake_graph.folder_by_path("Inbox/Backup reports/Processed").id
    assert report["message_count"] == 3 and report["error"] is None and report["step"] is None


def test_test_connection_explains_a_failure(fake_graph):
    report = source(fake_graph, mailbox="nobody@contoso.example").test_connection()

    assert report["token"] and not report["mailbox"] and not report["ok"]
    assert report["error_code"] == "unknown_mailbox" and "Mailbox" in report["error"]
    assert report["step"] == "mailbox" and report["error_details"]["graph_code"] == "ErrorInvalidUser"


def test_test_connection_reads_the_permissions_in_the_token(monkeypatch):
    """Entra's tokens are JWTs listing the app's permissions: Mail.Read alone can read, but the
    import could never move a mail, so the test fails at the permission step."""
    with FakeGraph([make_mime()], permissions=("Mail.Read",), jwt_tokens=True) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
        report = source(fake).test_connection()

    assert report["token"] and report["mailbox"] and not report["ok"]
    assert report["step"] == "permission" and report["error_code"] == "access_denied"
    assert report["error_details"]["granted"] == ["Mail.Read"] and "Mail.ReadWrite" in report["error"]


def test_test_connection_gets_a_fresh_token_of_its_own(fake_graph):
    source(fake_graph).list_messages()           # the importer's cached token
    before = fake_graph.token_requests

    report = GraphMailSource(graph_config(fake_graph), shared_token_cache=False).test_connection()
    source(fake_graph).list_messages()           # the importer's token is still cached

    assert report["ok"] and fake_graph.token_requests == before + 1


def test_send_mail(fake_graph):
    source(fake_graph).send_mail(["ops@msp.example", "boss@msp.example"], "Weekly report",
                                 "<p>All green</p>",
                                 [("report.pdf", "application/pdf", b"%PDF-1.7 fake\x00\xff")])

    [mail] = fake_graph.sent_mail
    assert mail.to == ["ops@msp.example", "boss@msp.example"]
    assert mail.subject == "Weekly report" and mail.content_type == "html" and mail.body == "<p>All green</p>"
    assert mail.attachments == [("report.pdf", "application/pdf", b"%PDF-1.7 fake\x00\xff")]


def test_send_mail_without_mail_send_permission(monkeypatch):
    with FakeGraph([], permissions=("Mail.ReadWrite",)) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
        err = error_of(lambda: source(fake).send_mail(["ops@msp.example"], "x", "<p>x</p>"))

    assert err.code == "access_denied" and "Mail.Send" in err.message and not fake.sent_mail


def test_config_repr_hides_the_secret(fake_graph):
    config = graph_config(fake_graph)

    assert fake_graph.client_secret not in repr(config)


def test_short_lived_tokens_are_refreshed(monkeypatch):
    with FakeGraph([make_mime()], expires_in=120) as fake:  # < 5 minutes: msal treats it as expired
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
        src = source(fake)
        src.list_messages()
        src.list_messages()

    assert fake.token_requests >= 2
    assert all(r.status == 200 for r in fake.graph_requests)


def test_sign_in_service_outage(fake_graph):
    fake_graph.fail(503, server="idp", path_contains="/token", times=5)

    err = error_of(source(fake_graph).list_messages)

    assert err.code == "unavailable" and "sign-in" in err.message


def test_fake_env_and_config_values_match(fake_graph):
    env = fake_graph.env()

    assert env["GRAPH_API_BASE"] == fake_graph.api_base and env["REQUESTS_CA_BUNDLE"] == fake_graph.ca_bundle
    assert len(GraphMailSource(GraphConfig(**fake_graph.config_values())).list_messages()) == 3


def test_config_from_settings_mapping():
    config = GraphConfig.from_settings({"graph_tenant_id": " t ", "graph_client_id": "c", "graph_client_secret": "s",
                                        "graph_mailbox": "m@x.example", "graph_incoming_folder": "",
                                        "graph_processed_folder": "Inbox/Done"}, timeout=7)

    assert (config.tenant_id, config.incoming_folder, config.processed_folder) == ("t", "Inbox", "Inbox/Done")
    assert config.authority_host == "https://login.microsoftonline.com" and config.timeout == 7
    assert GraphConfig.from_settings({}).missing() == ["Tenant ID", "Client ID", "Client secret", "Mailbox"]


def test_another_process_reaches_the_fake_through_its_env(fake_graph):
    """How an app server started by a test (gunicorn) reads the fake mailbox: env only."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import os\n"
        "from backend.app.mail.graph import GraphConfig, GraphMailSource\n"
        "s = {k.lower(): v for k, v in os.environ.items() if k.startswith('GRAPH_')}\n"
        "print(len(GraphMailSource(GraphConfig.from_settings(s)).list_messages()))\n"
    )
    src_dir = Path(__file__).resolve().parents[2] / "containers" / "backupchecks" / "src"
    env = {**os.environ, **fake_graph.env(), "PYTHONPATH": str(src_dir)}
    env.pop("CURL_CA_BUNDLE", None)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)

    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"
