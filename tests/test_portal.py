"""The customer portal: portal users (created by an admin or by invitation), what they see, and
what they never see. The no-leak walk over every route is in test_route_matrix.py."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from .conftest import csrf_token, login, post_form
from .helpers import PASSWORD
from .portal_seed import A_JOB, A_NAME, B_JOBS, B_NAME, PORTAL_USER, seed_portal_world

NEW_PASSWORD = "a-long-portal-password"


def _audit(event):
    from backend.app.extensions import db
    from backend.app.models import AuditLog

    return db.session.execute(select(AuditLog).where(AuditLog.event == event).order_by(AuditLog.id)).scalars().all()


def _user(name):
    from backend.app.extensions import db
    from backend.app.models import User

    db.session.expire_all()
    return db.session.execute(select(User).where(User.username == name)).scalar_one_or_none()


def _portal(app, name=PORTAL_USER, password=PASSWORD):
    c = app.test_client()
    assert login(c, name, password).status_code == 302
    return c


def _nav(html: str) -> list[str]:
    nav = html[html.index('id="main-nav"'):html.index("</nav>", html.index('id="main-nav"'))]
    return re.findall(r'class="nav-link[^"]*"[^>]*>\s*<span>([^<]+)</span>', nav)


@pytest.fixture
def world(app, personas):
    return seed_portal_world()


# --- Creating portal users and binding them --------------------------------------------------------

def test_an_admin_creates_a_portal_user_bound_to_customers(as_user, world):
    admin = as_user("admin")
    r = post_form(admin, "/settings/users/new", {"username": "carol", "password": NEW_PASSWORD, "roles": "portal",
                                                  "customer_ids": [str(world.a.id)], "mail_bodies": "1"},
                  follow_redirects=True)
    assert "User carol created." in r.get_data(as_text=True)
    carol = _user("carol")
    assert carol.role_list == ["portal"] and [c.name for c in carol.customers] == [A_NAME]
    assert carol.portal_mail_bodies is True
    entry = _audit("user.create")[-1]
    assert A_NAME in entry.summary and entry.after["customers"] == [world.a.id]
    page = admin.get("/settings/users").get_data(as_text=True)
    assert f"Portal: {A_NAME} · mail bodies" in page


@pytest.mark.parametrize("fields,error", [
    ({"roles": "portal"}, "Choose at least one customer for a portal user."),
    ({"roles": ["portal", "viewer"], "customer_ids": "1"}, "give them the portal role only"),
])
def test_a_portal_user_needs_a_customer_and_no_staff_role(as_user, world, fields, error):
    r = post_form(as_user("admin"), "/settings/users/new", {"username": "dave", "password": NEW_PASSWORD, **fields},
                  follow_redirects=True)
    assert error in r.get_data(as_text=True)
    assert _user("dave") is None


def test_changing_a_portal_users_customers_is_audited_and_counts_from_their_next_page(app, as_user, world):
    paula = _portal(app)
    assert A_JOB in paula.get("/daily-jobs").get_data(as_text=True)
    r = post_form(as_user("admin"), f"/settings/users/{world.portal.id}",
                  {"action": "portal", "customer_ids": [str(world.b.id)]}, follow_redirects=True)
    assert f"Customers of {PORTAL_USER} saved" in r.get_data(as_text=True)
    entry = _audit("user.customers")[-1]
    assert entry.before == {"customers": [world.a.id], "mail_bodies": True}
    assert entry.after == {"customers": [world.b.id], "mail_bodies": False}
    assert A_NAME in entry.summary and B_NAME in entry.summary
    page = paula.get("/daily-jobs").get_data(as_text=True)  # the same session: the new scope at once
    assert B_JOBS[0] in page and A_JOB not in page
    assert paula.get(f"/jobs/{world.a_job.id}").status_code == 404


def test_a_role_change_or_deactivation_ends_a_portal_users_sessions(app, as_user, world):
    paula = _portal(app)
    admin = as_user("admin")
    post_form(admin, f"/settings/users/{world.portal.id}", {"action": "roles", "roles": "viewer"})
    assert paula.get("/").status_code == 302  # logged out
    user = _user(PORTAL_USER)
    assert user.role_list == ["viewer"] and user.customers == [] and not user.portal_mail_bodies
    assert _audit("user.customers")[-1].after == {"customers": []}
    # Back to portal (customers required), then deactivated: logged out again.
    post_form(admin, f"/settings/users/{world.portal.id}", {"action": "roles", "roles": "portal",
                                                            "customer_ids": [str(world.a.id)]})
    assert [c.name for c in _user(PORTAL_USER).customers] == [A_NAME]
    paula = _portal(app)
    post_form(admin, f"/settings/users/{world.portal.id}", {"action": "deactivate"})
    assert paula.get("/").status_code == 302


# --- Invitations -------------------------------------------------------------------------------------

def _invite(admin, customer_ids, mail_bodies=False):
    r = post_form(admin, "/settings/users/invitations", {"customer_ids": [str(i) for i in customer_ids],
                                                         "mail_bodies": "1" if mail_bodies else "", "note": "Ivy"})
    html = r.get_data(as_text=True)
    link = re.search(r'id="invitation-url"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*id="invitation-url"', html)
    assert r.status_code == 200 and link, html[:2000]
    assert r.headers.get("Cache-Control") == "no-store"  # the link is a secret: never kept by a cache
    return (link.group(1) or link.group(2)).replace("http://localhost", "")


def _accept(app, path, username="ivy", password=NEW_PASSWORD):
    c = app.test_client()
    r = c.post(path, data={"username": username, "password": password, "confirm": password,
                           "csrf_token": csrf_token(c, path)})
    return c, r


def test_an_invitation_makes_a_portal_user_who_lands_in_the_portal(app, as_user, world):
    from backend.app.extensions import db
    from backend.app.models import PortalInvitation

    admin = as_user("admin")
    path = _invite(admin, [world.a.id], mail_bodies=True)
    token = path.rsplit("/", 1)[1]
    assert len(token) >= 40
    stored = db.session.execute(select(PortalInvitation)).scalar_one()
    assert token not in stored.token_hash and len(stored.token_hash) == 64  # only the hash is kept
    listed = admin.get("/settings/users").get_data(as_text=True)
    assert 'data-state="open"' in listed and "Ivy" in listed
    assert token not in listed  # the link is shown once, when it is made

    c, r = _accept(app, path)
    assert r.status_code == 302 and r.headers["Location"].endswith("/")
    home = c.get("/").get_data(as_text=True)
    assert "Your backups" in home and A_JOB in home and B_NAME not in home
    ivy = _user("ivy")
    assert ivy.role_list == ["portal"] and [x.name for x in ivy.customers] == [A_NAME] and ivy.portal_mail_bodies
    assert [e.event for e in _audit("portal_invitation.create")] == ["portal_invitation.create"]
    assert _audit("portal_invitation.accept")[-1].user_id == ivy.id
    table = admin.get("/settings/users").get_data(as_text=True)
    assert 'data-state="used"' in table and "by ivy" in table


def test_a_used_invitation_works_once(app, as_user, world):
    path = _invite(as_user("admin"), [world.a.id])
    assert _accept(app, path)[1].status_code == 302
    c, r = _accept(app, path, username="ivy2")
    assert r.status_code == 410 and "already used" in r.get_data(as_text=True)
    assert app.test_client().get(path).status_code == 410
    assert _user("ivy2") is None


def test_an_expired_invitation_is_refused(app, as_user, world, clock):
    path = _invite(as_user("admin"), [world.a.id])
    clock.shift(timedelta(days=7, minutes=1))
    r = app.test_client().get(path)
    assert r.status_code == 410 and "has expired" in r.get_data(as_text=True)
    assert _accept(app, path)[1].status_code == 410 and _user("ivy") is None


def test_a_revoked_invitation_is_refused_and_the_revocation_audited(app, as_user, world):
    from backend.app.extensions import db
    from backend.app.models import PortalInvitation

    admin = as_user("admin")
    path = _invite(admin, [world.a.id])
    inv = db.session.execute(select(PortalInvitation)).scalar_one()
    r = post_form(admin, f"/settings/users/invitations/{inv.id}/revoke", follow_redirects=True)
    assert "its link no longer works" in r.get_data(as_text=True)
    assert _audit("portal_invitation.revoke")
    r = app.test_client().get(path)
    assert r.status_code == 410 and "withdrawn" in r.get_data(as_text=True)
    assert _accept(app, path)[1].status_code == 410 and _user("ivy") is None


def test_an_unknown_invitation_is_not_found(app, world):
    r = app.test_client().get("/auth/invitation/not-a-real-token-at-all-0123456789abcdef")
    assert r.status_code == 404 and "no invitation at this address" in r.get_data(as_text=True)


def test_an_invitation_needs_a_customer(as_user, world):
    r = post_form(as_user("admin"), "/settings/users/invitations", {"note": "x"}, follow_redirects=True)
    assert "No invitation made: Choose at least one customer" in r.get_data(as_text=True)


# --- What a portal user sees -------------------------------------------------------------------------

def test_the_portal_has_its_own_navigation(app, world):
    paula = _portal(app)
    home = paula.get("/").get_data(as_text=True)
    assert _nav(home) == ["Dashboard", "Daily Jobs", "Reports", "Documentation"]
    assert 'id="global-search"' not in home
    for path in ("/inbox", "/run-checks", "/customers", "/jobs", "/overrides", "/tickets", "/settings",
                 "/settings/users", "/audit-log", "/parsers", "/feedback", "/feedback/new", "/jobs/lookup?q=a"):
        assert paula.get(path).status_code == 403, path
    profile = paula.get("/auth/profile").get_data(as_text=True)
    assert 'id="digest-subscription"' not in profile and "two-factor" in profile.lower()
    docs = paula.get("/docs/").get_data(as_text=True)
    assert "The customer portal" in docs
    assert paula.get("/docs/inbox").status_code == 404 and paula.get("/docs/two_factor").status_code == 200
    assert paula.get("/docs/api_tokens").status_code == 200 and paula.get("/auth/profile/tokens").status_code == 200
    assert paula.get("/docs/api").status_code == 200  # what the tokens are for
    hits = paula.get("/docs/search?q=mail").get_data(as_text=True)
    assert "/docs/mail_import" not in hits and "/docs/inbox" not in hits
    # Another customer's job: the 404 page's help is their guide, not the staff's Troubleshooting (a 404 too).
    missing = paula.get(f"/jobs/{world.b_jobs[0].id}")
    assert missing.status_code == 404
    assert "/docs/troubleshooting" not in missing.get_data(as_text=True)
    assert '· <a href="/docs/portal">Help</a>' in missing.get_data(as_text=True)


def test_the_portal_dashboard_and_daily_jobs_show_only_their_customers(app, world):
    paula = _portal(app)
    home = paula.get("/").get_data(as_text=True)
    assert A_NAME in home and A_JOB in home and 'data-kpi="success"' in home
    daily = paula.get("/daily-jobs").get_data(as_text=True)
    assert A_JOB in daily and "All your customers" in daily
    options = re.findall(r'<option value="(\d+)"', daily)
    assert options == [str(world.a.id)]
    assert "Ticket" not in daily and "Remark" not in daily  # the provider's notes are not shown


def test_a_job_history_without_mail_bodies_has_no_mail(app, personas):
    world = seed_portal_world(mail_bodies=False)
    paula = _portal(app)
    page = paula.get(f"/jobs/{world.a_job.id}").get_data(as_text=True)
    assert "All alpha files copied" in page and "run-mail-link" not in page
    assert "Alpha ticket" not in page and "Alpha remark" not in page
    assert paula.get(f"/jobs/{world.a_job.id}/runs/{world.a_runs[0].id}/mail").status_code == 404
    assert paula.get(f"/jobs/{world.a_job.id}/runs/{world.a_runs[0].id}/mail/body").status_code == 404


def test_a_job_history_with_mail_bodies_opens_the_runs_mail_sandboxed(app, world):
    paula = _portal(app)
    page = paula.get(f"/jobs/{world.a_job.id}").get_data(as_text=True)
    assert "run-mail-link" in page
    mail = paula.get(f"/jobs/{world.a_job.id}/runs/{world.a_runs[0].id}/mail")
    assert mail.status_code == 200 and f"[Success] {A_JOB}" in mail.get_data(as_text=True)
    body = paula.get(f"/jobs/{world.a_job.id}/runs/{world.a_runs[0].id}/mail/body")
    assert "Alpha mail body" in body.get_data(as_text=True) and "sandbox" in body.headers["Content-Security-Policy"]
    # A run without a mail, and another customer's run under this job: nothing there.
    assert paula.get(f"/jobs/{world.a_job.id}/runs/{world.a_runs[1].id}/mail").status_code == 404
    assert paula.get(f"/jobs/{world.a_job.id}/runs/{world.b_runs[0].id}/mail").status_code == 404


def test_portal_reports_are_those_over_their_customers_only(app, world):
    paula = _portal(app)
    page = paula.get("/reports").get_data(as_text=True)
    assert "Alpha monthly" in page
    for other in ("Bravo monthly", "Alpha and Bravo together", "Everyone"):
        assert other not in page
    downloads = re.findall(r"/reports/runs/(\d+)/download", page)
    assert downloads == [str(world.ids["report_run"])]  # not the file made while the report covered B too
    r = paula.get(f"/reports/runs/{world.ids['report_run']}/download")
    assert r.status_code == 200 and r.data == b"customer\n"
    assert paula.get(f"/reports/{world.ids['report']}/preview").status_code == 200
    assert "New report" not in page and "could not be mailed" not in page


def test_report_visibility_rule(app, world):
    from backend.app.extensions import db
    from backend.app.models import ReportDefinition
    from backend.app.services.reports import visible_to

    defs = {d.name: d for d in db.session.execute(select(ReportDefinition)).scalars()}
    assert visible_to(defs["Alpha monthly"], world.portal)
    assert not visible_to(defs["Bravo monthly"], world.portal)
    assert not visible_to(defs["Alpha and Bravo together"], world.portal)
    assert not visible_to(defs["Everyone"], world.portal)


def test_a_portal_user_gets_no_morning_digest(app, world):
    from backend.app.extensions import db
    from backend.app.services.digest_delivery import recipients

    world.portal.email, world.portal.digest_subscribed = "paula@example.test", True
    db.session.commit()
    assert "paula@example.test" not in recipients()


def test_portal_pages_cost_the_same_queries_for_one_job_as_for_many(app, world):
    from backend.app.extensions import db
    from backend.app.services.daily_jobs import day_cache

    from .clock import TEST_NOW
    from .helpers import make_job, make_run, page_queries

    paula = _portal(app)
    paths = ("/", "/daily-jobs", f"/jobs/{world.a_job.id}", "/reports")
    paula.get("/")  # the first page of the day (the dashboard-first policy) is behind us
    day_cache.clear()
    before = {p: page_queries(paula, p) for p in paths}
    for i in range(6):
        job = make_job(world.a, f"Alpha extra {i}", sender=f"x{i}@example.test")
        make_run(job, "Warning", TEST_NOW - timedelta(hours=1, minutes=i))
        make_run(world.a_job, "Success", TEST_NOW - timedelta(days=2, minutes=i))
    db.session.commit()
    day_cache.clear()
    assert {p: page_queries(paula, p) for p in paths} == before


def test_a_portal_user_changes_their_own_theme_and_password(app, world):
    paula = _portal(app)
    r = post_form(paula, "/auth/profile", {"section": "theme", "theme-theme": "dark"}, follow_redirects=True)
    assert "Theme set to dark." in r.get_data(as_text=True)
    r = post_form(paula, "/auth/profile", {"section": "password", "pw-current": PASSWORD, "pw-password": NEW_PASSWORD,
                                           "pw-confirm": NEW_PASSWORD}, follow_redirects=True)
    assert "Your password was changed." in r.get_data(as_text=True)
    assert paula.get("/auth/two-factor/setup").status_code == 200
    assert [e.event for e in _audit("user.theme")] == ["user.theme"]


def test_a_portal_user_bound_to_no_customer_sees_nothing(app, world):
    from backend.app.extensions import db

    world.portal.customers = []
    db.session.commit()
    paula = _portal(app)
    home = paula.get("/").get_data(as_text=True)
    assert "No customer is linked to your account yet" in home and A_JOB not in home
    assert A_JOB not in paula.get("/daily-jobs").get_data(as_text=True)
    assert paula.get(f"/jobs/{world.a_job.id}").status_code == 404
    assert "Alpha monthly" not in paula.get("/reports").get_data(as_text=True)


def test_a_maintenance_windows_reason_is_the_providers_note(app, world):
    """Daily Jobs shows a portal user that a slot fell in a maintenance window, not the reason an
    operator typed (it may name anyone)."""
    from datetime import date, time
    from zoneinfo import ZoneInfo

    from backend.app.extensions import db
    from backend.app.services import quiet
    from backend.app.services.daily_jobs import build_day
    from backend.app.services.schedules import local_to_utc, recompute_job_schedule

    ams = ZoneInfo("Europe/Amsterdam")
    job = world.a_job
    job.created_at = local_to_utc(date(2026, 10, 1), time(0), ams)
    job.manual_schedule = {"kind": "weekdays", "weekdays": list(range(7)), "time": "22:00", "grace_minutes": 120}
    recompute_job_schedule(job, local_to_utc(date(2026, 10, 10), time(12), ams), ams)
    quiet.create_window(quiet.Window(kind="weekly", reason=f"{B_NAME} SAN swap", zone="Europe/Amsterdam",
                                     weekdays=(5,), local_start=time(21), local_end=time(23)), job=job, user=world.portal)
    db.session.commit()
    moment = local_to_utc(date(2026, 10, 11), time(3), ams)
    staff_rows = [r for g in build_day(date(2026, 10, 10), ams, moment).groups for r in g.rows]
    portal_rows = [r for g in build_day(date(2026, 10, 10), ams, moment, user=world.portal).groups for r in g.rows]
    assert [r.status for r in portal_rows] == ["Maintenance"]
    assert B_NAME in staff_rows[0].note and portal_rows[0].note == "maintenance window at 22:00"
