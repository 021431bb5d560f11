"""In-app documentation: every page links to its documentation page, and those pages exist."""
import re


SKIP = {"static", "main.health", "main.metrics", "auth.login", "auth.setup", "auth.logout",
        "main.digest_preview_mail",  # the content of a page's frame, not a page; /metrics is for Prometheus
        "auth.oidc_start", "auth.oidc_callback", "auth.pending"}  # steps of a login, like auth.login


def test_every_page_links_to_existing_documentation(app, as_user):
    c = as_user("admin")
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIP or "GET" not in rule.methods or rule.arguments or rule.endpoint.startswith("docs."):
            continue
        r = c.get(rule.rule)
        if not r.content_type.startswith("text/html") or r.status_code in (301, 302):
            continue  # JSON endpoints, downloads and redirects are not pages
        html = r.get_data(as_text=True)
        links = re.findall(r'class="btn btn-sm btn-outline-secondary doc-link" href="(/docs/[^"]+)"', html)
        if not links:
            missing.append(rule.rule)
            continue
        assert c.get(links[0]).status_code == 200, (rule.rule, links[0])
    assert missing == [], f"pages without a documentation link: {missing}"


def test_docs_search_finds_pages_by_text(as_user):
    html = as_user("viewer").get("/docs/search?q=Argon2").get_data(as_text=True)
    assert "Users and roles" in html


def test_docs_sidebar_lists_sections(as_user):
    html = as_user("reporter").get("/docs/").get_data(as_text=True)
    for title in ("Getting started", "Run Checks", "Troubleshooting", "Command line"):
        assert title in html


def test_search_snippets_are_plain_text_with_the_match_marked(as_user):
    html = as_user("operator").get("/docs/search?q=mark+job+reviewed").get_data(as_text=True)
    snippet = html[html.index('class="small text-body-secondary doc-snippet"'):]
    snippet = snippet[:snippet.index("</div>")]
    assert "<mark>Mark job reviewed</mark> (r)" in snippet  # the Markdown "**Mark job reviewed** (`r`)"
    assert "**" not in snippet and "`" not in snippet and "|" not in snippet


def test_search_marks_the_match_safely(as_user):
    html = as_user("viewer").get("/docs/search?q=<script>").get_data(as_text=True)
    assert "<mark>&lt;script&gt;</mark>" in html and "<mark><script>" not in html
    assert "Search: &lt;script&gt;" in html
