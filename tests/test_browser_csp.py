"""The studio and the API docs under the app's strict Content-Security-Policy, in real headless
Chromium (the set-up of ``tests/test_browser.py``): not one violation while a storyboard is
generated and shown, the docs page lists and runs its operations, and a contact sheet keeps its
stylesheet. Violations are caught twice: Chromium's console report and the page's own
``securitypolicyviolation`` events (forwarded to the console by an init script, which the policy
does not govern)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from storyboard.config import get_settings
from storyboard.contact_sheet import write_contact_sheet

# Imported first: without Playwright or Chromium, tests.test_browser skips (or, under CI, fails)
# this module as it does its own.
from .test_browser import (  # the fixtures register by import, under their own names
    _page,
    base_url,  # noqa: F401
    browser,  # noqa: F401
    expect,
    frame,
    start_job,
    tid,
    wait_ready,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

pytestmark = pytest.mark.browser

REPORT = """document.addEventListener('securitypolicyviolation', (event) => console.error(
    `securitypolicyviolation: ${event.violatedDirective} blocked ${event.blockedURI || 'inline'}`
    + ` at ${event.sourceFile}:${event.lineNumber}`));"""


@pytest.fixture
def csp_page(browser: Browser, base_url: str) -> Iterator[tuple[Page, list[str]]]:  # noqa: F811
    """A page (JavaScript errors and requests outside the app fail the test, as in
    ``test_browser``) and the list of every CSP violation it reports."""
    violations: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "securitypolicyviolation" in message.text:
            violations.append(message.text)

    pages = _page(browser, base_url, 1280, 800)  # closes the page and checks it when resumed
    for page in pages:
        page.on("console", on_console)
        page.add_init_script(REPORT)
        yield page, violations


def test_the_studio_generates_a_storyboard_without_a_csp_violation(
    csp_page: tuple[Page, list[str]], base_url: str,  # noqa: F811
) -> None:
    page, violations = csp_page
    response = page.goto("/")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe" not in policy

    start_job(page, prompt="A lighthouse keeper's last night, storm rolling in", duration=20)
    expect(page.locator(tid("progress-message"))).to_contain_text("Generating image for scene")
    wait_ready(page)
    frames = page.locator("[data-testid=frame]")
    expect(frames).to_have_count(4)
    assert page.evaluate("""() => [...document.querySelectorAll('img.frame-image')]
        .every(img => img.complete && img.naturalWidth > 0)""")
    # The progress bar is sized from script (allowed), and the stylesheet applies.
    assert page.locator(".progress-fill").evaluate("el => el.style.width") == "100%"
    assert page.locator(".topbar").evaluate("el => getComputedStyle(el).display") == "flex"

    # The regenerate form opens and redraws a frame; the storyboard is approved.
    page.click(tid("regenerate", frame(2)))
    page.fill(tid("regenerate-description", frame(2)), "The lamp room, glass streaked with rain")
    page.click(tid("regenerate-submit", frame(2)))
    expect(page.locator(tid("frame-versions", frame(2)))).to_contain_text("1 earlier version")
    wait_ready(page)
    page.click(tid("approve"))
    expect(page.locator(tid("approved-state"))).to_be_visible()
    assert violations == [], violations

    # The contact sheet beside the images keeps its own inline stylesheet (allowed by hash).
    job_id = int(page.evaluate("location.hash").rsplit("/", 1)[1])
    write_contact_sheet(get_settings().media_dir, job_id, "Lighthouse", [])
    page.goto(f"/media/jobs/{job_id}/index.html")
    expect(page.locator("h1")).to_have_text("Lighthouse")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == (
        "rgb(244, 242, 238)")
    assert violations == [], violations
    assert httpx.get(f"{base_url}/media/jobs/{job_id}/index.html").headers[
        "content-security-policy"].startswith("default-src 'none'; script-src 'self'; style-src "
                                              "'self' 'sha256-")


def test_the_api_docs_render_and_run_under_the_policy(
    csp_page: tuple[Page, list[str]],
) -> None:
    page, violations = csp_page
    response = page.goto("/docs")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in policy and "unsafe-inline" not in policy
    page.get_by_text("/api/v2/generate").first.wait_for()
    page.get_by_text("/api/v2/jobs/{job_id}/scenes/{scene_number}/regenerate").first.wait_for()
    expect(page.locator(".opblock").first).to_be_visible()

    # Try an operation from the page: the request goes to the app and its answer is shown.
    operation = page.locator(".opblock-get").filter(has_text="/api/v2/planning").first
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    expect(operation.locator(".live-responses-table tbody .response-col_status").first
           ).to_have_text("200")
    assert violations == [], violations
