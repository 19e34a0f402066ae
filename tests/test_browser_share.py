"""The studio on a server with API tokens, in real headless Chromium (the set-up of
``tests/test_browser.py``): an owner signs in with a token, makes a board and shares it; a
reviewer opens the share link in a fresh browser (no token, nothing stored), comments on a frame
and approves; the owner sees both. The animatic plays in the page for both, through signed links.
What a share link does not allow is not offered. No Content-Security-Policy violation and no
JavaScript error anywhere (violations collected as ``tests/test_browser_csp.py`` does).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from storyboard.access import create_token
from storyboard.api.app import create_app
from storyboard.config import get_settings
from storyboard.db import get_engine

# Imported first: without Playwright or Chromium, tests.test_browser skips (or, under CI, fails)
# this module as it does its own.
from .live_server import serve
from .test_browser import (  # the fixtures register by import, under their own names
    SCREENSHOTS,
    TIMEOUT_MS,
    _page,
    browser,  # noqa: F401
    expect,
    frame,
    no_horizontal_scroll,
    start_job,
    tid,
    wait_ready,
    wait_until,
)
from .test_browser_csp import REPORT

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

pytestmark = pytest.mark.browser

ALL_IMAGES_LOADED = """() => { const images = [...document.querySelectorAll('img.frame-image')];
    return images.length > 0 && images.every(img => img.complete && img.naturalWidth > 0); }"""
PLAYER = "document.querySelector('[data-testid=animatic-player]')"


@dataclass
class Server:
    url: str
    owner: str  # alice's API token
    other: str  # bob's: another owner on the same server

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.owner}"}

    def board(self, prompt: str, duration: int = 15) -> dict[str, Any]:
        """A ready board of alice's, made through the API."""
        made = httpx.post(f"{self.url}/api/v2/generate", headers=self.headers(),
                          json={"prompt": prompt, "duration": duration}, timeout=10)
        made.raise_for_status()
        job_id = made.json()["job_id"]
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while True:
            job = httpx.get(f"{self.url}/api/v2/jobs/{job_id}", headers=self.headers(),
                            timeout=10).json()
            if job["status"] == "storyboard_ready":
                return dict(job)
            assert time.monotonic() < deadline, job
            time.sleep(0.05)

    def share(self, job_id: int, **terms: Any) -> str:
        """A share link to the board, as the owner would paste it."""
        made = httpx.post(f"{self.url}/api/v2/jobs/{job_id}/share", headers=self.headers(),
                          json=terms, timeout=10)
        assert made.status_code == 201, made.text
        return f"{self.url}{made.json()['url']}"


@pytest.fixture
def server(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """The app as ``storyboard serve`` builds it, with tokens in its database before it starts
    (so it runs in multi-user mode from its first request)."""
    monkeypatch.setenv("STORYBOARD_SKETCH_DELAY", "0.1")
    monkeypatch.setenv("STORYBOARD_SCENE_CONCURRENCY", "1")
    settings = get_settings()
    engine = get_engine(settings)
    alice, _ = create_token(engine, "alice")
    bob, _ = create_token(engine, "bob")
    with serve(create_app(settings, embedded_worker=True)) as url:
        yield Server(url, alice, bob)


@contextmanager
def watched(browser: Browser, base_url: str, width: int = 1280,  # noqa: F811
            height: int = 800) -> Iterator[Page]:
    """A page in a fresh browser context (no token, nothing stored): JavaScript errors and
    requests outside the app fail the test (``_page``), and so does any CSP violation."""
    violations: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "securitypolicyviolation" in message.text:
            violations.append(message.text)

    pages = _page(browser, base_url, width, height)
    page = next(pages)
    page.on("console", on_console)
    page.add_init_script(REPORT)
    yield page
    next(pages, None)  # closes the context and checks it
    assert violations == [], violations


def sign_in(page: Page, token: str) -> None:
    """Open the studio and give the token the dialog asks for."""
    page.goto("/")
    dialog = page.locator(tid("token-dialog"))
    expect(dialog).to_be_visible()
    page.fill(tid("token-input"), token)
    page.click(tid("token-save"))
    expect(dialog).to_be_hidden()


def signed_in_as(page: Page, name: str) -> None:
    expect(page.locator(tid("whoami"))).to_have_text(name)
    expect(page.locator(tid("sign-out"))).to_be_visible()


def job_id_of(page: Page) -> int:
    return int(page.evaluate("location.hash").rsplit("/", 1)[1])


def visible(page: Page, testid: str) -> int:
    return page.locator(f"[data-testid={testid}]:visible").count()


def animatic_plays(page: Page, seconds: float) -> None:
    """Open the animatic: it says it is rendering, then plays the board's length."""
    page.evaluate("""() => {  // every state the panel passes through, however briefly
        window.__animatic = [];
        const panel = document.querySelector('[data-testid=animatic-panel]');
        new MutationObserver(() => window.__animatic.push(panel.dataset.state || ''))
            .observe(panel, {attributes: true, attributeFilter: ['data-state']});
    }""")
    page.click(tid("animatic"))
    expect(page.locator(tid("animatic-panel"))).to_be_visible()
    wait_until(page, f"{PLAYER}.readyState >= 1")
    expect(page.locator(tid("animatic-status"))).to_be_hidden()
    assert page.evaluate("window.__animatic")[:2] == ["rendering", "ready"]
    assert page.evaluate(f"{PLAYER}.duration") == pytest.approx(seconds, abs=0.25)
    assert page.evaluate(f"{PLAYER}.videoWidth") > 0
    # The player and its download link cannot send a token: both carry the signed value.
    assert "access=" in page.evaluate(f"{PLAYER}.currentSrc")
    expect(page.locator(tid("animatic-download"))).to_have_attribute(
        "href", re.compile(r"/export\.mp4\?access="))


def save_screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # else the sticky header lands mid-page
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_an_owner_shares_a_board_a_reviewer_comments_and_approves(
    browser: Browser, server: Server,  # noqa: F811
) -> None:
    with watched(browser, server.url) as author:
        events: list[str] = []
        author.on("request", lambda r: events.append(r.url) if "/events" in r.url else None)

        # (a) The server has tokens: the studio asks for one, and says when it is wrong.
        author.goto("/")
        dialog = author.locator(tid("token-dialog"))
        expect(dialog).to_be_visible()
        author.fill(tid("token-input"), "sb_not-a-token")
        author.click(tid("token-save"))
        expect(author.locator(tid("token-error"))).to_contain_text("not valid")
        expect(dialog).to_be_visible()
        save_screenshot(author, "token-dialog-1280x800")
        author.fill(tid("token-input"), server.owner)
        author.click(tid("token-save"))
        expect(dialog).to_be_hidden()
        signed_in_as(author, "alice")
        assert author.evaluate("localStorage.getItem('storyboard.token')") == server.owner

        # A board, followed live through its signed event stream; the images load through
        # their signed links.
        start_job(author, prompt="A lighthouse keeper's last night, storm rolling in",
                  duration=20)
        wait_ready(author)
        frames = author.locator("[data-testid=frame]")
        expect(frames).to_have_count(4)
        wait_until(author, ALL_IMAGES_LOADED)
        expect(author.locator(f"{frame(1)} img.frame-image")).to_have_attribute(
            "src", re.compile(r"^/media/jobs/\d+/scene-01-v1\.png\?access=\d+\.\d+\.o\.[\w-]+$"))
        assert any("/events?access=" in url for url in events), events
        job_id = job_id_of(author)
        for link in ("export-pdf", "export-zip", "export-csv"):
            expect(author.locator(tid(link))).to_have_attribute(
                "href", re.compile(rf"/api/v2/jobs/{job_id}/export\.\w+\?access="))
        with author.expect_download() as pdf:
            author.click(tid("export-pdf"))
        assert Path(pdf.value.path()).read_bytes().startswith(b"%PDF")

        # A share link that lets the reviewer approve, shown whole, ready to copy.
        author.click(tid("share"))
        author.fill(tid("share-label"), "Client review")
        author.fill(tid("share-expires"), "48")
        author.check(tid("share-allow-approve"))
        author.click(tid("share-create"))
        url_field = author.locator(tid("share-url"))
        expect(url_field).to_have_value(re.compile(rf"^{re.escape(server.url)}/s#sh_[\w-]+$"))
        share_url = url_field.input_value()
        item = author.locator(tid("share-item"))
        expect(item).to_have_count(1)
        expect(item).to_contain_text("Client review")
        expect(item).to_contain_text("may approve")
        author.click(tid("share-copy"))
        expect(author.locator(tid("share-copied"))).to_have_text(re.compile("Copied|Ctrl"))
        save_screenshot(author, "share-owner-1280x800")

        # (b) A reviewer in a fresh browser: no token, nothing stored.
        with watched(browser, server.url) as reviewer:
            reviewer.goto(share_url)
            expect(reviewer.locator("[data-testid=frame]")).to_have_count(4)
            wait_until(reviewer, ALL_IMAGES_LOADED)
            expect(reviewer.locator(tid("job-title"))).to_have_text(
                "A lighthouse keeper's last night, storm rolling in")
            expect(reviewer.locator(tid("token-dialog"))).to_be_hidden()
            expect(reviewer.locator(tid("whoami"))).to_contain_text("Reviewing")
            # Nothing a reviewer cannot do is offered: no composer, no list, no redraws.
            for gone in ("generate-form", "prompt", "job-list", "new-storyboard"):
                expect(reviewer.locator(tid(gone))).to_have_count(0)
            for hidden in ("regenerate", "cancel", "render-plan", "share", "bible-edit",
                           "sign-out"):
                assert visible(reviewer, hidden) == 0, hidden
            expect(reviewer.locator(tid("approve"))).to_be_visible()
            expect(reviewer.locator(tid("request-changes"))).to_be_visible()

            # A comment needs the reviewer's name first; it is asked for, then kept.
            reviewer.fill(tid("comment-input", frame(2)), "Darker sky here, please")
            reviewer.click(tid("comment-submit", frame(2)))
            expect(reviewer.locator(tid("comment-error", frame(2)))).to_contain_text("your name")
            expect(reviewer.locator(tid("reviewer-name"))).to_be_focused()
            reviewer.fill(tid("reviewer-name"), "Dana")
            reviewer.click(tid("comment-submit", frame(2)))
            comment = reviewer.locator(tid("comment", frame(2)))
            expect(comment).to_have_count(1)
            expect(comment.locator(tid("comment-author"))).to_have_text("Dana")
            expect(comment.locator(tid("comment-text"))).to_have_text("Darker sky here, please")
            expect(reviewer.locator(tid("comment-error", frame(2)))).to_be_hidden()
            expect(reviewer.locator(tid("comment-input", frame(2)))).to_have_value("")
            expect(reviewer.locator(tid("comment", frame(1)))).to_have_count(0)

            reviewer.click(tid("approve"))
            approved = reviewer.locator(tid("approved-state"))
            expect(approved).to_contain_text("Approved by Dana")
            expect(reviewer.locator(tid("approve"))).to_be_hidden()
            save_screenshot(reviewer, "share-reviewer-1280x800")
            # The link's token stays the page's: nothing is stored as an owner's token.
            assert reviewer.evaluate("localStorage.getItem('storyboard.token')") is None
            assert reviewer.evaluate("localStorage.getItem('storyboard.reviewer-name')") == "Dana"

        # (c) The owner, on reloading, sees the reviewer's comment and approval.
        author.reload()
        expect(author.locator(tid("token-dialog"))).to_be_hidden()
        comment = author.locator(tid("comment", frame(2)))
        expect(comment).to_have_count(1)
        expect(comment).to_contain_text("Dana")
        expect(comment).to_contain_text("Darker sky here, please")
        expect(author.locator(tid("approved-state"))).to_contain_text("Approved by Dana")
        expect(author.locator(tid("job-status"))).to_have_attribute("data-approved", "true")

        # The owner answers on the board as a whole, under their own name.
        board = author.locator(tid("board-comments"))
        board.locator(tid("comment-input")).fill("Thanks, redrawing scene 2 tomorrow")
        board.locator(tid("comment-submit")).click()
        expect(board.locator(tid("comment-author"))).to_have_text("alice")

        # Signing out forgets the token: the studio asks again.
        author.click(tid("sign-out"))
        expect(author.locator(tid("token-dialog"))).to_be_visible()
        assert author.evaluate("localStorage.getItem('storyboard.token')") is None


def test_the_animatic_plays_for_the_owner_and_through_a_share_link(
    browser: Browser, server: Server,  # noqa: F811
) -> None:
    job = server.board("A bakery at 4 am, flour in the air", duration=15)
    share_url = server.share(job["job_id"])
    with watched(browser, server.url) as owner:
        sign_in(owner, server.owner)
        owner.goto(f"/#/jobs/{job['job_id']}")
        wait_ready(owner)
        animatic_plays(owner, 15)
        save_screenshot(owner, "animatic-1280x800")
        # Closed, it stops loading; a board that is redrawn takes the button away meanwhile.
        owner.click(tid("animatic-close"))
        expect(owner.locator(tid("animatic-panel"))).to_be_hidden()
        assert owner.evaluate(f"{PLAYER}.getAttribute('src')") is None
    with watched(browser, server.url, 390, 844) as reviewer:  # on a phone
        reviewer.goto(share_url)
        wait_ready(reviewer)
        animatic_plays(reviewer, 15)
        no_horizontal_scroll(reviewer, 390)
        reviewer.fill(tid("reviewer-name"), "Robin")
        reviewer.fill(tid("comment-input", frame(3)), "Love the ending")
        reviewer.click(tid("comment-submit", frame(3)))
        expect(reviewer.locator(tid("comment", frame(3)))).to_contain_text("Robin")
        no_horizontal_scroll(reviewer, 390)
        save_screenshot(reviewer, "share-reviewer-390x844")


def test_a_share_link_offers_only_what_it_allows(
    browser: Browser, server: Server,  # noqa: F811
) -> None:
    job = server.board("A robot exploring Mars at dawn", duration=15)
    looks_only = server.share(job["job_id"], allow_comments=False)
    comments_only = server.share(job["job_id"])  # the defaults: comments, no approval
    with watched(browser, server.url) as page:
        page.goto(comments_only)
        expect(page.locator("[data-testid=frame]")).to_have_count(3)
        expect(page.locator(tid("comment-input", frame(1)))).to_be_visible()
        expect(page.locator(tid("reviewer-name"))).to_be_visible()
        expect(page.locator(tid("job-status"))).to_have_attribute("data-status",
                                                                  "storyboard_ready")
        for hidden in ("approve", "request-changes", "regenerate", "share"):
            assert visible(page, hidden) == 0, hidden
        expect(page.locator(tid("animatic"))).to_be_visible()  # reading is allowed

        page.goto(looks_only)
        page.reload()  # another fragment alone does not load a page
        expect(page.locator("[data-testid=frame]")).to_have_count(3)
        expect(page.locator(tid("board-comments"))).to_be_visible()
        for hidden in ("comment-input", "comment-submit", "approve", "request-changes",
                       "reviewer-name"):
            assert visible(page, hidden) == 0, hidden


def test_a_reviewer_requests_changes_and_the_approval_is_taken_back(
    browser: Browser, server: Server,  # noqa: F811
) -> None:
    job = server.board("A perfume ad on a night beach", duration=15)
    approved = httpx.post(f"{server.url}/api/v2/jobs/{job['job_id']}/approve",
                          headers=server.headers(), timeout=10)
    assert approved.json()["approved_by"] == "alice"
    share_url = server.share(job["job_id"], allow_approve=True, label="Agency")
    with watched(browser, server.url) as page:
        page.goto(share_url)
        expect(page.locator(tid("approved-state"))).to_contain_text("Approved by alice")
        page.fill(tid("reviewer-name"), "Sam")
        page.click(tid("request-changes"))
        page.click(tid("request-changes-submit"))  # empty: asked what should change
        expect(page.locator(tid("request-changes-error"))).to_contain_text("what should change")
        page.fill(tid("request-changes-input"), "End on the bottle, not the sea")
        page.click(tid("request-changes-submit"))
        expect(page.locator(tid("request-changes-form"))).to_be_hidden()
        expect(page.locator(tid("approved-state"))).to_be_hidden()
        expect(page.locator(tid("approve"))).to_be_visible()
        request = page.locator(tid("comment", tid("board-comments")))
        expect(request).to_have_count(1)
        expect(request).to_have_attribute("data-kind", "changes")
        expect(request).to_contain_text("Sam")
        expect(request).to_contain_text("Changes requested")
        expect(request).to_contain_text("End on the bottle, not the sea")


def test_a_revoked_link_and_another_owners_board_open_nothing(
    browser: Browser, server: Server,  # noqa: F811
) -> None:
    job = server.board("A teaser for a coffee brand", duration=15)
    share_url = server.share(job["job_id"])
    share_id = httpx.get(f"{server.url}/api/v2/jobs/{job['job_id']}/shares",
                         headers=server.headers(), timeout=10).json()["shares"][0]["id"]
    with watched(browser, server.url) as page:
        # Bob signs in: alice's board is not his to see, and his list is empty.
        page.set_viewport_size({"width": 390, "height": 844})  # the top bar fits a phone
        sign_in(page, server.other)
        signed_in_as(page, "bob")
        no_horizontal_scroll(page, 390)
        page.set_viewport_size({"width": 1280, "height": 800})
        expect(page.locator(tid("job-list-empty"))).to_be_visible()
        page.goto(f"/#/jobs/{job['job_id']}")
        expect(page.locator(tid("action-error"))).to_contain_text("does not exist")
        expect(page.locator(tid("token-dialog"))).to_be_hidden()

        # Alice revokes the link from her studio; the reviewer's page then says so.
        page.click(tid("sign-out"))
        page.fill(tid("token-input"), server.owner)
        page.click(tid("token-save"))
        signed_in_as(page, "alice")
        page.goto(f"/#/jobs/{job['job_id']}")
        wait_ready(page)
        page.click(tid("share"))
        item = page.locator(f"[data-testid=share-item][data-share-id='{share_id}']")
        expect(item).to_have_attribute("data-active", "true")
        item.locator(tid("share-revoke")).click()
        expect(item).to_have_attribute("data-active", "false")
        expect(item).to_contain_text("Revoked")
    with watched(browser, server.url) as reviewer:
        reviewer.goto(share_url)
        expect(reviewer.locator(tid("link-invalid"))).to_be_visible()
        expect(reviewer.locator(tid("token-dialog"))).to_be_hidden()
        expect(reviewer.locator(tid("job-view"))).to_be_hidden()


def test_single_user_mode_needs_no_token_and_offers_no_sharing(
    browser: Browser, isolated_env: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    monkeypatch.setenv("STORYBOARD_SKETCH_DELAY", "0.05")
    with serve(create_app(get_settings(), embedded_worker=True)) as url, \
            watched(browser, url) as page:
        page.goto("/")
        start_job(page, prompt="A quiet morning in a small harbour town", duration=15)
        wait_ready(page)
        for absent in ("token-dialog", "whoami", "sign-out", "sign-in", "share",
                       "reviewer-name"):
            assert visible(page, absent) == 0, absent
        # Comments and the animatic need no account; their links need no signature.
        page.fill(tid("comment-input", frame(1)), "Open wider on the harbour")
        page.click(tid("comment-submit", frame(1)))
        expect(page.locator(tid("comment", frame(1)))).to_contain_text("Open wider")
        expect(page.locator(tid("export-pdf"))).to_have_attribute(
            "href", re.compile(r"/export\.pdf$"))
        # A video the service will not make says why, in the service's own words.
        page.route("**/export.mp4*", lambda route: route.fulfill(
            status=409, json={"detail": "Job 1 has no storyboard to render yet"}))
        page.click(tid("animatic"))
        expect(page.locator(tid("animatic-status"))).to_have_text(
            "The animatic could not be played: Job 1 has no storyboard to render yet.")
        expect(page.locator(tid("animatic-panel"))).to_have_attribute("data-state", "failed")
        page.click(tid("animatic"))
        expect(page.locator(tid("animatic-panel"))).to_be_hidden()
        page.click(tid("approve"))
        expect(page.locator(tid("approved-state"))).to_have_text(re.compile(r"^Approved \u00b7"))
