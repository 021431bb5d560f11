"""In a real browser: file a bug with a screenshot, see the image and the Markdown rendered, vote, refuse a fake image."""
import pytest

from backend.app.extensions import db

from ..conftest import PASSWORD, make_user

pytestmark = [pytest.mark.browser]

SHOT = "/tmp/backupchecks-feedback.png"


def login(page, base, name):
    page.goto(base + "/auth/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def submit(page, selector):
    """Click a link or a form button and wait for the next page to load."""
    with page.expect_navigation():
        page.click(selector)


def test_create_feedback_with_a_screenshot_and_see_it_rendered(browser, live_server, app):
    make_user("victor", roles=("viewer",))
    db.session.commit()  # the live server reads from its own session
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    login(page, live_server, "victor")

    # A real screenshot, made by the browser itself.
    screenshot = page.screenshot()

    submit(page, "#main-nav >> text=Feedback")
    assert "No feedback yet" in page.inner_text("#feedback-empty")
    submit(page, "#feedback-new")

    # A fake image first: refused with a message naming it; title and text are kept.
    page.check("#kind-bug")
    page.fill("#title", "Dashboard shows no runs")
    page.fill("#description", "Steps:\n\n1. Open the **dashboard**\n2. See nothing\n\n<script>window.pwned=1</script>")
    page.set_input_files("#attachments", files=[
        {"name": "dashboard.png", "mimeType": "image/png", "buffer": screenshot},
        {"name": "evil.png", "mimeType": "image/png", "buffer": b"<svg xmlns='http://www.w3.org/2000/svg'/>"},
    ])
    submit(page, "#feedback-form button[type=submit]")
    assert '"evil.png" was refused' in page.inner_text("#feedback-error")
    assert page.input_value("#title") == "Dashboard shows no runs"
    page.screenshot(path="/tmp/backupchecks-feedback-refused.png")

    # Now only the real screenshot.
    page.set_input_files("#attachments", files=[{"name": "dashboard.png", "mimeType": "image/png", "buffer": screenshot}])
    submit(page, "#feedback-form button[type=submit]")
    page.wait_for_url("**/feedback/1")
    assert "saved" in page.inner_text("main")
    body = page.locator("#feedback-description")
    assert body.locator("strong", has_text="dashboard").count() == 1
    assert body.locator("ol li").count() == 2
    assert page.evaluate("window.pwned") is None  # the script in the text did not run
    img = page.locator("#feedback-description .feedback-attachments img")
    assert img.count() == 1
    img.scroll_into_view_if_needed()
    page.wait_for_function("(el) => el.complete && el.naturalWidth > 0", arg=img.element_handle())
    assert img.evaluate("el => el.naturalWidth") == 1280
    # Opened on its own (the link around the thumbnail), it shows as an image with safe headers.
    src = img.get_attribute("src")
    viewer = ctx.new_page()
    response = viewer.goto(live_server + src)
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert viewer.evaluate("document.images.length && document.images[0].naturalWidth") == 1280
    viewer.close()

    # Vote, and see it counted.
    submit(page, "#feedback-meta .vote-form button")
    assert "is counted" in page.inner_text("main")
    assert page.inner_text("#feedback-meta .vote-count") == "1"
    page.screenshot(path=SHOT, full_page=True)

    submit(page, "text=← All feedback")
    assert page.locator("#feedback-table tr[data-item='1']").count() == 1
    page.screenshot(path="/tmp/backupchecks-feedback-list.png")
    ctx.close()

    # An admin sets the status, deletes the item, sees it under 'Deleted items' and restores it.
    make_user("alice", roles=("admin",))
    db.session.commit()  # the live server reads from its own session
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    login(page, live_server, "alice")
    page.goto(live_server + "/feedback/1")
    page.select_option("#status-select", "planned")
    submit(page, "#status-form button")
    assert "set to Planned" in page.inner_text("main")
    page.on("dialog", lambda d: d.accept())
    submit(page, "#feedback-meta button:has-text('Delete')")
    assert "Only admins see this item" in page.inner_text("#feedback-deleted")
    page.screenshot(path="/tmp/backupchecks-feedback-admin-deleted.png")
    page.goto(live_server + "/feedback?show=deleted")
    assert page.locator("#feedback-table tr[data-item='1']").count() == 1
    submit(page, "#feedback-table a:has-text('Dashboard shows no runs')")
    submit(page, "#feedback-deleted button:has-text('Restore')")
    assert "restored" in page.inner_text("main")
    ctx.close()
