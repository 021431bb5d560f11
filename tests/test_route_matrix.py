"""Every route in app.url_map is guarded by the active role, without anyone remembering.

Anonymous → login (or setup with no users); a role without access → 403; a role
with access → no 403 and no server error.
"""
import re

import pytest

from .conftest import _CSRF_RE, PERSONAS, csrf_token, login
from .portal_seed import A_JOB, A_NAME, PORTAL_USER, seed_portal_world

# The two-factor step and forced enrolment are reached half-logged-in (after the password, before
# the code); without that state they send the visitor to the login page. SSO's are reached before a login.
PUBLIC_ENDPOINTS = {"static", "main.health", "main.metrics", "main.badge", "auth.login", "auth.setup", "auth.logout",
                    "auth.two_factor_step", "auth.two_factor_enrol",
                    "auth.oidc_start", "auth.oidc_callback", "auth.pending", "api.openapi", "auth.invitation"}


def _is_api(endpoint: str) -> bool:
    """The JSON API takes a token, not the session: its role guard (api_roles) is checked for every
    operation and role by tests/api/test_auth.py, its ids by tests/api/test_auth.py too."""
    return endpoint.startswith("api.")


def _routes(app, *, api: bool = False):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS or (_is_api(rule.endpoint) and not api):
            continue
        url = re.sub(r"<(?:int:)?[^>]+>", "1", rule.rule)
        method = "GET" if "GET" in rule.methods else sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
        yield rule.endpoint, url, method, app.view_functions[rule.endpoint]


def test_every_view_declares_its_roles(app):
    unguarded = [ep for ep, _, _, view in _routes(app, api=True) if not getattr(view, "allowed_roles", None)]
    assert unguarded == [], f"routes without roles_required: {unguarded}"


def test_anonymous_is_sent_to_setup_without_users(app):
    client = app.test_client()
    for endpoint, url, method, _ in _routes(app):
        if method != "GET":
            continue
        r = client.get(url)
        assert r.status_code == 302 and "/auth/setup" in r.headers["Location"], (endpoint, r.status_code)


@pytest.mark.slow  # over 5 s
def test_role_matrix(app, personas):
    """Every route × every role (the four staff personas and a portal user), on two customers: the
    portal user's (A, whose rows all have id 1, what the matrix puts into every URL) and another (B)."""
    seed_portal_world()
    anon = app.test_client()
    clients = {}
    for role, name in {**PERSONAS, "portal": PORTAL_USER}.items():
        c = app.test_client()
        assert login(c, name).status_code == 302
        clients[role] = (c, csrf_token(c, "/auth/profile"))
    checked = 0
    for endpoint, url, method, view in _routes(app):
        allowed = set(view.allowed_roles)
        r = anon.open(url, method=method, data={"csrf_token": csrf_token(anon, "/auth/login")} if method != "GET" else None)
        assert r.status_code in (302, 401), (endpoint, "anonymous", r.status_code)
        if r.status_code == 302:
            assert "/auth/login" in r.headers["Location"], (endpoint, r.headers["Location"])
        for role, (c, token) in clients.items():
            data = {"csrf_token": token} if method != "GET" else None
            r = c.open(url, method=method, data=data)
            if role in allowed:
                assert r.status_code != 403 and r.status_code < 500, (endpoint, role, r.status_code)
            else:
                assert r.status_code == 403, (endpoint, role, r.status_code)
            checked += 1
    assert checked >= 5 * 20


@pytest.mark.parametrize("role,path,expected", [
    ("viewer", "/run-checks", 403),
    ("reporter", "/inbox", 403),
    ("operator", "/settings", 403),
    ("operator", "/audit-log", 403),
    ("viewer", "/daily-jobs", 200),
    ("reporter", "/reports", 200),
    ("admin", "/parsers", 200),
    ("operator", "/run-checks", 200),
])
def test_access_reads_as_sentences(as_user, role, path, expected):
    assert as_user(role).get(path).status_code == expected


def test_forbidden_page_explains_what_to_do(as_user):
    r = as_user("viewer").get("/run-checks")
    text = r.get_data(as_text=True)
    assert "Your active role (viewer) may not open this page" in text
    assert "Traceback" not in text


# --- Row ids beyond what the database can hold: 404, never a server error ------------------------

def _id_routes(app):
    for rule in app.url_map.iter_rules():
        if (rule.endpoint in PUBLIC_ENDPOINTS or _is_api(rule.endpoint)
                or not re.search(r"<(?:id|int):", rule.rule)):
            continue
        method = "GET" if "GET" in rule.methods else sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
        yield rule.endpoint, rule.rule, method


def test_every_row_id_in_a_route_uses_the_id_converter(app):
    int_routes = [rule.rule for rule in app.url_map.iter_rules() if "<int:" in rule.rule]
    assert int_routes == [], "use <id:...> for row ids (1 … 2^31-1)"
    assert len(list(_id_routes(app))) >= 20


@pytest.mark.parametrize("bad", ["2147483648", "99999999999999999999", "0"])
def test_an_id_out_of_range_is_not_found_on_every_route(app, personas, bad):
    admin = app.test_client()
    assert login(admin, PERSONAS["admin"]).status_code == 302
    token = csrf_token(admin, "/auth/profile")
    for endpoint, rule, method in _id_routes(app):
        url = re.sub(r"<(?:id|int):[^>]+>", bad, rule)
        url = re.sub(r"<[^>]+>", "1", url)
        r = admin.open(url, method=method, data={"csrf_token": token} if method != "GET" else None)
        assert r.status_code == 404, (endpoint, url, r.status_code)
        assert b"There is nothing at this address" in r.data


def test_the_largest_id_reaches_the_page_and_finds_nothing(as_user):
    assert as_user("admin").get("/jobs/2147483647").status_code == 404
    assert as_user("admin").get("/inbox/2147483647/eml").status_code == 404


def test_an_id_out_of_range_in_a_form_is_never_a_server_error(as_user):
    admin = as_user("admin")
    token = csrf_token(admin, "/auth/profile")
    # A list of ids from checkboxes: what is no id (too large, not ASCII digits) is left out.
    for bad in ("2147483648", "\u00b2", "\u0661"):
        r = admin.post("/inbox/delete", data={"ids": [bad], "csrf_token": token}, follow_redirects=True)
        assert r.status_code == 200 and "Select at least one mail to delete." in r.get_data(as_text=True), bad
    # Any other place an id reaches the database (here an int form field): not found.
    r = admin.post("/run-checks/review", data={"job_id": "2147483648", "csrf_token": token})
    assert r.status_code == 404 and b"There is nothing at this address" in r.data
    assert admin.get("/inbox").status_code == 200  # the session was rolled back: the next request works


def test_parse_id_accepts_only_ascii_row_ids():
    from backend.app.web import parse_id

    assert [parse_id(v) for v in ("1", " 42 ", "2147483647")] == [1, 42, 2147483647]
    assert [parse_id(v) for v in ("", "0", "-1", "2147483648", "\u00b2", "\u0661", "1e3", None, 5)] == [None] * 9


@pytest.mark.parametrize("text,matches", [
    ("1", True), ("9", True), ("10", True), ("999999999", True), ("1000000000", True), ("2147483599", True),
    ("2147483639", True), ("2147483647", True),
    ("0", False), ("01", False), ("-1", False), ("2147483648", False), ("2147483650", False),
    ("2147483700", False), ("2200000000", False), ("9999999999", False), ("10000000000", False),
])
def test_the_id_converter_matches_exactly_one_to_two_to_the_31_minus_one(text, matches):
    from backend.app.web import IdConverter

    assert bool(re.fullmatch(IdConverter.regex, text)) is matches


# --- The customer portal: another customer's ids are "not found", and never named ----------------

def _portal_login(app):
    c = app.test_client()
    assert login(c, PORTAL_USER).status_code == 302
    return c, csrf_token(c, "/auth/profile")


def _id_kind(rule: str, name: str):
    """Which kind of row an id in a URL names (None: a kind no customer owns)."""
    if name == "run_id":
        return "report_run" if rule.startswith("/reports/") else "run"
    if name == "rule_id":
        return "override" if rule.startswith("/overrides/") else None
    return {"customer_id": "customer", "job_id": "job", "msg_id": "mail", "ticket_id": "ticket",
            "remark_id": "remark", "definition_id": "report"}.get(name)


def _fill(rule: str, values: dict) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: str(values.get(m.group(1), 1)), rule)


def _b_urls(app, world):
    """Every route holding an id of a kind a customer owns, once per id of B in it (a job's run: B's
    run under A's job, A's run under B's job and B's run under B's job)."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS or _is_api(rule.endpoint):  # the API: tests/api (token scope)
            continue
        params = [(name, _id_kind(rule.rule, name)) for name in rule.arguments]
        owned = [(name, kind) for name, kind in params if kind]
        if not owned:
            continue
        method = "GET" if "GET" in rule.methods else sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
        a_values = {name: world.ids[kind] for name, kind in owned}
        for name, kind in owned:
            for b_id in world.b_ids[kind]:
                yield (rule.endpoint, _fill(rule.rule, {**a_values, name: b_id}),
                       _fill(rule.rule, {**a_values, name: NOBODYS_ID}), method)
        if len(owned) > 1:
            b_values = {name: world.b_ids[kind][0] for name, kind in owned}
            yield (rule.endpoint, _fill(rule.rule, b_values),
                   _fill(rule.rule, {name: NOBODYS_ID for name, _ in owned}), method)


NOBODYS_ID = 2147483000  # an id no row has


def _without_tokens(html: str) -> str:
    """The page without its CSRF tokens (signed with the time, so two answers differ there)."""
    return _CSRF_RE.sub("", html)


def test_a_portal_user_finds_nothing_at_any_id_of_another_customer(app, personas):
    """Logged in as the portal user of A, every route with every id of B: 404 where the portal may go
    (exactly what an id that does not exist answers), 403 elsewhere (before any row is read); and
    no answer names B or its jobs."""
    world = seed_portal_world()
    c, token = _portal_login(app)
    checked = 0
    for endpoint, url, missing_url, method in _b_urls(app, world):
        view = app.view_functions[endpoint]
        data = {"csrf_token": token} if method != "GET" else None
        r = c.open(url, method=method, data=data)
        expected = 404 if "portal" in view.allowed_roles else 403
        assert r.status_code == expected, (endpoint, url, r.status_code)
        body = r.get_data(as_text=True)
        assert not [s for s in world.b_strings if s in body], (endpoint, url)
        # The same route with an id nobody has answers the same: the answer tells nothing.
        missing = c.open(missing_url, method=method, data=data)
        assert (missing.status_code, _without_tokens(missing.get_data(as_text=True))) == (
            r.status_code, _without_tokens(body)), (endpoint, url)
        checked += 1
    assert checked >= 40


def _portal_pages(app, world):
    """Every GET route the portal may open, with A's ids (and the portal's docs page)."""
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if (rule.endpoint in PUBLIC_ENDPOINTS or _is_api(rule.endpoint) or "GET" not in rule.methods
                or "portal" not in view.allowed_roles):
            continue
        values = {name: world.ids[_id_kind(rule.rule, name)] for name in rule.arguments if _id_kind(rule.rule, name)}
        values["slug"] = "portal"
        yield rule.endpoint, _fill(rule.rule, values)


def test_no_portal_page_names_another_customer(app, personas):
    """Every page the portal user may open (with A's ids, and with B's id in every customer filter)
    answers, shows A, and never names B or B's jobs: not in lists, filters, titles or cards."""
    world = seed_portal_world()
    c, _ = _portal_login(app)
    pages = list(_portal_pages(app, world))
    assert {"main.dashboard", "main.daily_jobs", "main.job_detail", "main.reports", "main.reports_detail",
            "main.reports_preview", "main.reports_download", "main.job_run_mail", "docs.page"} <= {e for e, _ in pages}
    for endpoint, url in pages:
        r = c.get(url)
        assert r.status_code == 200, (endpoint, url, r.status_code)
        body = r.get_data(as_text=True)
        assert not [s for s in world.b_strings if s in body], (endpoint, url)
        for param in ("customer", "customer_id", "q", "job", "run"):
            sep = "&" if "?" in url else "?"
            value = B_FILTER_VALUES[param](world)
            r = c.get(f"{url}{sep}{param}={value}")
            assert r.status_code in (200, 404), (endpoint, param, r.status_code)
            body = r.get_data(as_text=True)
            assert not [s for s in world.b_strings if s in body], (endpoint, param)
    # A filter on B's customer is not found, exactly as a customer id that does not exist.
    assert c.get(f"/daily-jobs?customer={world.b.id}").status_code == 404
    assert c.get("/daily-jobs?customer=999999").status_code == 404
    home = c.get("/").get_data(as_text=True)
    assert A_NAME in home and A_JOB in home


B_FILTER_VALUES = {"customer": lambda w: w.b.id, "customer_id": lambda w: w.b.id, "q": lambda w: "Bravo",
                   "job": lambda w: w.b_jobs[0].id, "run": lambda w: w.b_runs[0].id}
