"""The studio in real headless Chromium, against the real app served by uvicorn on loopback.

Debian's Chromium (``/usr/bin/chromium``, or ``STORYBOARD_CHROMIUM``) is driven by Playwright;
Playwright's own browser download is never used. The sketch renderer is slowed down
(``STORYBOARD_SKETCH_DELAY``) and runs one scene at a time so progress can be watched.

Without Playwright or Chromium the module is skipped locally; under ``CI=true`` it fails.
Screenshots of the studio are saved to ``artifacts/screenshots/``: a finished storyboard (laptop
and phone), one with a failed frame, a cancelled one, the story bible with stale frames (laptop
and phone) and a plan under review.

Plans come from the rules, or from the fake OpenAI-compatible server of ``tests/fake_llm.py``
(the lighthouse story of ``tests/story.py``) for the tests of the bible and the planner.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import BackgroundTasks

from storyboard import generate_storyboard_task
from storyboard.api.app import create_app
from storyboard.config import get_settings
from storyboard.errors import PermanentImageError
from tests.fake_llm import (  # the fixtures register by import, under their own names
    FAKE_LLM_KEY,
    FakeLLM,
    fake_llm_fixture,  # noqa: F401
    fake_llm_server_fixture,  # noqa: F401
)

from .live_server import serve
from .providers import ScriptedProvider
from .story import LIGHTHOUSE, MARA_LOOK

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # under CI a missing browser toolkit is a failure, locally a skip
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("browser tests skipped: Playwright is not installed (pip install playwright)",
                allow_module_level=True)

CHROMIUM = Path(os.environ.get("STORYBOARD_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
TIMEOUT_MS = 20_000

if not CHROMIUM.exists():
    _reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"browser tests cannot run under CI: {_reason}")
    pytest.skip(f"browser tests skipped: {_reason}", allow_module_level=True)

pytestmark = pytest.mark.browser
expect.set_options(timeout=TIMEOUT_MS)

PROMPT = "A robot exploring Mars at dawn, finding an old rover half buried in red dust"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def base_url(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The app as ``storyboard serve`` builds it (API, studio and the in-process worker) on a
    free loopback port, with images slow enough to watch."""
    monkeypatch.setenv("STORYBOARD_SKETCH_DELAY", "0.3")
    monkeypatch.setenv("STORYBOARD_SCENE_CONCURRENCY", "1")
    with serve(create_app(get_settings(), embedded_worker=True)) as url:
        yield url


NSFW = "NSFW content detected. Try running it again with a different prompt."


@pytest.fixture
def scripted_url(isolated_env: Path) -> Iterator[str]:
    """The real app whose jobs (the spec's BackgroundTasks) draw with an injected provider:
    scene 2's first image is refused for its content, every later attempt succeeds."""
    settings = get_settings(scene_concurrency=1)
    provider = ScriptedProvider(script={2: [PermanentImageError(NSFW)]}, delay=0.2)

    def dispatch(job_id: int, tasks: BackgroundTasks) -> None:
        tasks.add_task(generate_storyboard_task, job_id, settings=settings, provider=provider)

    with serve(create_app(settings, dispatch=dispatch)) as url:
        yield url


def _page(browser: Browser, base_url: str, width: int, height: int) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": width, "height": height},
                                  base_url=base_url, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # No CDN, no web fonts, no analytics: every request the studio makes goes to the app.
    foreign: list[str] = []
    page.on("request", lambda request: foreign.append(request.url)
            if not request.url.startswith((f"{base_url}/", "data:", "blob:")) else None)
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
    assert foreign == [], f"requests outside the app: {foreign}"


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    yield from _page(browser, base_url, 1280, 800)


@pytest.fixture
def phone(browser: Browser, base_url: str) -> Iterator[Page]:
    yield from _page(browser, base_url, 390, 844)


@pytest.fixture
def slow_page(browser: Browser, isolated_env: Path,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    """As ``page``, with frames slow enough (0.8 s each) that a job runs for several seconds."""
    monkeypatch.setenv("STORYBOARD_SKETCH_DELAY", "0.8")
    monkeypatch.setenv("STORYBOARD_SCENE_CONCURRENCY", "1")
    with serve(create_app(get_settings(), embedded_worker=True)) as url:
        yield from _page(browser, url, 1280, 800)


@pytest.fixture
def scripted_page(browser: Browser, scripted_url: str) -> Iterator[Page]:
    yield from _page(browser, scripted_url, 1280, 800)


@pytest.fixture
def llm_url(isolated_env: Path, monkeypatch: pytest.MonkeyPatch, fake_llm: FakeLLM) -> Iterator[str]:
    """As ``base_url``, with plans made by the fake language model (``planner: auto`` picks
    it): the lighthouse story, its two characters and four places, in as many shots as asked.
    The images still come from the slowed sketch renderer."""
    monkeypatch.setenv("STORYBOARD_PLANNER", "auto")
    monkeypatch.setenv("STORYBOARD_LLM_BASE_URL", fake_llm.base_url)
    monkeypatch.setenv("STORYBOARD_LLM_API_KEY", FAKE_LLM_KEY)
    monkeypatch.setenv("STORYBOARD_SKETCH_DELAY", "0.3")
    monkeypatch.setenv("STORYBOARD_SCENE_CONCURRENCY", "1")
    with serve(create_app(get_settings(), embedded_worker=True)) as url:
        yield url


@pytest.fixture
def llm_page(browser: Browser, llm_url: str) -> Iterator[Page]:
    yield from _page(browser, llm_url, 1280, 800)


@pytest.fixture
def llm_phone(browser: Browser, llm_url: str) -> Iterator[Page]:
    yield from _page(browser, llm_url, 390, 844)


def no_horizontal_scroll(page: Page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    wide = page.evaluate("""(width) => [...document.querySelectorAll('body *')]
        .filter(el => el.getClientRects().length && el.getBoundingClientRect().right > width + 0.5)
        .map(el => el.className || el.tagName)""", width)
    assert wide == [], f"elements reach past the {width}px screen: {wide}"


def tid(testid: str, within: str = "") -> str:
    """The selector of ``data-testid=testid``, optionally inside the element ``within``."""
    return f"{within} [data-testid={testid}]".strip()


def frame(n: int) -> str:
    return f"[data-testid=frame][data-scene='{n}']"


def start_job(page: Page, prompt: str = PROMPT, duration: int = 20, style: str = "cinematic",
              aspect_ratio: str = "16:9") -> None:
    page.fill(tid("prompt"), prompt)
    page.fill(tid("duration"), str(duration))
    page.fill(tid("style"), style)
    page.check(f"[data-testid=aspect-ratio] input[value='{aspect_ratio}']")
    page.click(tid("generate"))


def wait_ready(page: Page) -> None:
    expect(page.locator(tid("job-status"))).to_have_attribute(
        "data-status", "storyboard_ready")


def create_via_api(base_url: str, prompt: str, duration: int = 15) -> int:
    response = httpx.post(f"{base_url}/api/v2/generate",
                          json={"prompt": prompt, "duration": duration}, timeout=10)
    response.raise_for_status()
    return int(response.json()["job_id"])


def wait_final_via_api(base_url: str, job_id: int) -> dict[str, object]:
    import time

    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        job = httpx.get(f"{base_url}/api/v2/jobs/{job_id}", timeout=10).json()
        if job["status"] in ("storyboard_ready", "failed", "cancelled"):
            return dict(job)
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def record_progress(page: Page) -> None:
    """Keep every value the progress bar and message take, however briefly."""
    page.evaluate("""() => {
        window.__seen = {values: [], messages: []};
        const bar = document.querySelector('[data-testid=progress-bar]');
        const message = document.querySelector('[data-testid=progress-message]');
        new MutationObserver(() => {
            window.__seen.values.push(Number(bar.getAttribute('aria-valuenow')));
        }).observe(bar, {attributes: true, attributeFilter: ['aria-valuenow']});
        new MutationObserver(() => {
            window.__seen.messages.push(message.textContent);
        }).observe(message, {childList: true, characterData: true, subtree: true});
    }""")



def wait_until(page: Page, expression: str) -> None:
    """Wait until ``expression`` is truthy in the page. Playwright's own ``wait_for_function``
    compiles its predicate inside the page, which the studio's Content-Security-Policy (no
    eval) forbids; ``evaluate`` runs it through the DevTools protocol, outside the policy."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {TIMEOUT_MS} ms: {expression}")
        page.wait_for_timeout(50)


NO_FINITE_ANIMATIONS = """() => document.getAnimations().every(a =>
    a.playState !== 'running' || !Number.isFinite(a.effect.getComputedTiming().iterations))"""

def save_screenshots(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    # Let finite transitions (the progress bar filling up) end; spinners loop forever.
    wait_until(page, NO_FINITE_ANIMATIONS)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    page.screenshot(path=str(SCREENSHOTS / f"{name}-full.png"), full_page=True)


def test_generate_watch_regenerate_approve_export(page: Page) -> None:
    page.goto("/")
    expect(page.locator(tid("empty-state"))).to_be_visible()
    record_progress(page)
    start_job(page, duration=20, style="watercolor", aspect_ratio="16:9")

    # Live progress: the bar moves through partial values and the spec's message shows.
    expect(page.locator(tid("progress-message"))).to_contain_text(
        "Generating image for scene")
    wait_ready(page)
    assert re.fullmatch(r"#/jobs/\d+", page.evaluate("location.hash"))
    seen = page.evaluate("window.__seen")
    assert any(0 < value < 100 for value in seen["values"]), seen
    assert seen["values"][-1] == 100
    assert any(re.search(r"Generating image for scene \d/4", m) for m in seen["messages"]), seen

    # Four frames for 20 s, in scene order, each with its beat, duration and image.
    frames = page.locator("[data-testid=frame]")
    expect(frames).to_have_count(4)
    assert [frames.nth(i).get_attribute("data-scene") for i in range(4)] == ["1", "2", "3", "4"]
    beats = [frames.nth(i).locator("[data-testid=frame-beat]").inner_text() for i in range(4)]
    assert [b.lower() for b in beats] == [
        "opening/hook", "context/setup", "content/product showcase", "closing/cta"]
    for i in range(4):
        expect(frames.nth(i).locator("[data-testid=frame-duration]")).to_have_text("5 s")
        expect(frames.nth(i).locator("img.frame-image")).to_have_attribute(
            "src", re.compile(r"^/media/jobs/\d+/scene-0\d-v1\.png$"))
    assert page.evaluate("""() => [...document.querySelectorAll('img.frame-image')]
        .every(img => img.complete && img.naturalWidth > 0)""")
    expect(page.locator(tid("job-title"))).to_have_text(PROMPT)
    expect(page.locator(tid("job-meta"))).to_contain_text("watercolor")

    # Regenerate scene 2 with an edited description: new text, one earlier version, new image.
    page.click(tid("regenerate", frame(2)))
    description = page.locator(tid("regenerate-description", frame(2)))
    expect(description).to_be_focused()
    description.fill("Close-up of the rover's dusty nameplate")
    page.click(tid("regenerate-submit", frame(2)))
    expect(page.locator(tid("frame-description", frame(2)))).to_have_text(
        "Close-up of the rover's dusty nameplate")
    expect(page.locator(tid("frame-versions", frame(2)))).to_contain_text(
        "1 earlier version")
    wait_ready(page)
    expect(page.locator(f"{frame(2)} img.frame-image")).to_have_attribute(
        "src", re.compile(r"scene-02-v2\.png$"))
    expect(page.locator(f"{frame(1)} [data-testid=frame-versions]")).to_be_hidden()

    # Approve: the approved state and time replace the button.
    page.click(tid("approve"))
    approved = page.locator(tid("approved-state"))
    expect(approved).to_be_visible()
    expect(approved).to_contain_text("Approved")
    expect(approved).to_contain_text(re.compile(r"\d{1,2}:\d\d"))
    expect(page.locator(tid("approve"))).to_be_hidden()
    expect(page.locator(tid("job-status"))).to_have_attribute("data-approved", "true")

    # Downloads: a real PDF and a ZIP.
    with page.expect_download() as pdf_download:
        page.click(tid("export-pdf"))
    pdf = Path(pdf_download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    assert pdf_download.value.suggested_filename.endswith(".pdf")
    with page.expect_download() as zip_download:
        page.click(tid("export-zip"))
    assert Path(zip_download.value.path()).read_bytes()[:2] == b"PK"

    save_screenshots(page, "laptop-1280x800")


def test_bad_input_shows_the_service_message(page: Page, base_url: str) -> None:
    page.goto("/")
    page.fill(tid("prompt"), "A robot exploring Mars")
    page.fill(tid("duration"), "400")
    page.click(tid("generate"))
    error = page.locator(tid("error"))
    expect(error).to_be_visible()
    expect(error).to_contain_text("Duration")
    expect(error).to_contain_text("300")
    expect(page.locator(tid("duration"))).to_have_attribute("aria-invalid", "true")

    page.fill(tid("duration"), "30")
    page.fill(tid("prompt"), "")
    page.click(tid("generate"))
    expect(error).to_contain_text("Prompt")
    expect(error).not_to_contain_text("Duration")
    expect(page.locator(tid("prompt"))).to_have_attribute("aria-invalid", "true")

    assert httpx.get(f"{base_url}/api/v2/jobs").json()["total"] == 0
    assert page.evaluate("location.hash") in ("", "#/")


def test_the_language_model_cannot_be_chosen_when_none_is_configured(
    page: Page, base_url: str,
) -> None:
    page.goto("/")
    page.fill(tid("prompt"), "A robot exploring Mars")
    page.select_option(tid("planner-select"), "llm")
    expect(page.locator(tid("planner-hint"))).to_contain_text("language model")
    page.click(tid("generate"))
    error = page.locator(tid("error"))
    expect(error).to_contain_text("Planner")
    expect(error).to_contain_text("no language model is configured")
    expect(page.locator(tid("planner-select"))).to_have_attribute("aria-invalid", "true")
    expect(page.locator(tid("planner-select"))).to_be_focused()
    assert httpx.get(f"{base_url}/api/v2/jobs").json()["total"] == 0


def test_phone_width_has_no_horizontal_scroll_and_one_column(phone: Page) -> None:
    phone.goto("/")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    start_job(phone, prompt="Vertical teaser for a coffee brand: steam, beans and a smile",
              duration=20, aspect_ratio="9:16")
    wait_ready(phone)
    frames = phone.locator("[data-testid=frame]")
    expect(frames).to_have_count(4)
    boxes = [frames.nth(i).bounding_box() for i in range(4)]
    assert all(box is not None for box in boxes)
    lefts = {round(box["x"]) for box in boxes if box}
    assert len(lefts) == 1, f"frames are not in one column: {boxes}"
    tops = [box["y"] for box in boxes if box]
    assert tops == sorted(tops) and len(set(tops)) == 4
    assert all(box["x"] >= 0 and box["x"] + box["width"] <= 390 for box in boxes if box)
    no_horizontal_scroll(phone, 390)
    # The frame keeps the requested shape.
    media = phone.locator(f"{frame(1)} .frame-media").bounding_box()
    assert media is not None and media["height"] / media["width"] == pytest.approx(16 / 9, 0.02)
    save_screenshots(phone, "phone-390x844")

    # The regenerate form and the list of storyboards fit the screen too.
    phone.click(tid("regenerate", frame(1)))
    expect(phone.locator(tid("regenerate-form", frame(1)))).to_be_visible()
    no_horizontal_scroll(phone, 390)
    phone.click(tid("regenerate-cancel", frame(1)))
    phone.locator(tid("job-list")).scroll_into_view_if_needed()
    no_horizontal_scroll(phone, 390)


def test_phone_width_long_unbroken_text_does_not_overflow(phone: Page) -> None:
    phone.goto("/")
    no_horizontal_scroll(phone, 390)  # the form
    start_job(phone, prompt="Supercalifragilistic" * 12 + " launch teaser", duration=15)
    wait_ready(phone)
    expect(phone.locator("[data-testid=frame]")).to_have_count(3)
    no_horizontal_scroll(phone, 390)
    phone.click(tid("new-storyboard"))
    expect(phone.locator(tid("prompt"))).to_be_visible()
    no_horizontal_scroll(phone, 390)


def test_job_list_and_reload_keep_the_selected_job(page: Page, base_url: str) -> None:
    older = create_via_api(base_url, "Older: a lighthouse keeper's last night")
    newer = create_via_api(base_url, "Newer: a bakery at 4 am")
    for job_id in (older, newer):
        wait_final_via_api(base_url, job_id)

    page.goto("/")
    items = page.locator("[data-testid=job-list] [data-testid=job-item]")
    expect(items).to_have_count(2)
    assert [items.nth(i).get_attribute("data-job-id") for i in range(2)] == [
        str(newer), str(older)]
    expect(items.nth(0).locator("[data-testid=job-item-status]")).to_have_attribute(
        "data-status", "storyboard_ready")

    items.nth(1).click()
    expect(page).to_have_url(re.compile(rf"#/jobs/{older}$"))
    expect(page.locator(tid("job-title"))).to_have_text(
        "Older: a lighthouse keeper's last night")
    expect(items.nth(1)).to_have_attribute("aria-current", "page")
    expect(page.locator("[data-testid=frame]")).to_have_count(3)

    page.reload()
    expect(page.locator(tid("job-title"))).to_have_text(
        "Older: a lighthouse keeper's last night")
    expect(page.locator("[data-testid=frame]")).to_have_count(3)

    page.goto(f"/#/jobs/{newer}")
    expect(page.locator(tid("job-title"))).to_have_text("Newer: a bakery at 4 am")
    page.goto("/#/jobs/424242")
    expect(page.locator(tid("action-error"))).to_contain_text("does not exist")
    # Nothing of the job shown before stays: no status, no progress, no exports to download.
    expect(page.locator(tid("job-status"))).to_have_text("")
    expect(page.locator(tid("progress-count"))).to_have_text("")
    for link in ("export-pdf", "export-zip"):
        expect(page.locator(tid(link))).to_have_attribute("aria-disabled", "true")
    expect(page.locator(tid("approve"))).to_be_hidden()


def test_ctrl_enter_while_a_job_is_being_created_makes_one_job(page: Page, base_url: str) -> None:
    page.add_init_script("""(() => {  // the service answers slowly: a second Ctrl+Enter lands
        const fetch = window.fetch;
        window.fetch = async (url, options) => {
            if (String(url).endsWith('/generate')) await new Promise(r => setTimeout(r, 800));
            return fetch(url, options);
        };
    })()""")
    page.goto("/")
    page.fill(tid("prompt"), "A single job, however eager the keyboard")
    page.focus(tid("prompt"))
    page.keyboard.press("Control+Enter")
    page.keyboard.press("Control+Enter")
    expect(page).to_have_url(re.compile(r"#/jobs/\d+$"))
    wait_ready(page)
    assert httpx.get(f"{base_url}/api/v2/jobs").json()["total"] == 1


def test_the_list_follows_a_job_the_user_has_left(slow_page: Page) -> None:
    page = slow_page
    page.goto("/")
    start_job(page, prompt="A long tour the user walks away from", duration=50)
    expect(page.locator(tid("job-status"))).to_have_attribute(
        "data-status", "generating_storyboard")
    # Long enough for the list's own refresh (every 3 s) to pass over the job followed.
    page.wait_for_timeout(4000)
    page.click(tid("new-storyboard"))
    item = page.locator("[data-testid=job-list] [data-testid=job-item-status]").first
    expect(item).to_have_attribute("data-status", "storyboard_ready")


def test_a_list_refresh_keeps_the_keyboard_focus(page: Page, base_url: str) -> None:
    older, newer = (create_via_api(base_url, f"Job {n}") for n in (1, 2))
    for job_id in (older, newer):
        wait_final_via_api(base_url, job_id)
    page.clock.install()  # the list's idle refresh runs when the test says
    page.goto("/")
    items = page.locator("[data-testid=job-list] [data-testid=job-item]")
    expect(items).to_have_count(2)
    items.nth(1).focus()
    wait_final_via_api(base_url, create_via_api(base_url, "Job 3, made elsewhere"))
    page.clock.fast_forward(16_000)
    expect(items).to_have_count(3)
    assert page.evaluate("document.activeElement.dataset.jobId") == str(older)


def test_cancel_a_running_job(page: Page, base_url: str) -> None:
    page.goto("/")
    start_job(page, prompt="A long product tour", duration=50)
    status = page.locator(tid("job-status"))
    expect(status).to_have_attribute("data-status", "generating_storyboard")
    expect(page.locator("[data-testid=frame][data-status=completed]").first).to_be_attached()
    page.click(tid("cancel"))
    expect(status).to_have_attribute("data-status", "cancelled")
    expect(page.locator(tid("cancel"))).to_be_hidden()
    expect(page.locator(tid("approve"))).to_be_hidden()
    expect(page.locator(tid("action-error"))).to_be_hidden()
    expect(page.locator(tid("progress-message"))).to_have_text("Cancelled")

    # The run stops: once it has let go of the job, the frames drawn are all there will be.
    job_id = int(page.evaluate("location.hash").rsplit("/", 1)[1])
    wait_released(base_url, job_id)
    page.reload()
    expect(status).to_have_attribute("data-status", "cancelled")
    drawn = page.locator("[data-testid=frame][data-status=completed]")
    undrawn = page.locator("[data-testid=frame][data-status=pending]")
    expect(page.locator("[data-testid=frame]")).to_have_count(10)
    done = drawn.count()
    assert 1 <= done < 10
    expect(undrawn).to_have_count(10 - done)  # none left spinning as if still being drawn
    expect(undrawn.first.locator(".frame-placeholder-title")).to_have_text("Not drawn")
    save_screenshots(page, "cancelled-1280x800")
    job = httpx.get(f"{base_url}/api/v2/jobs/{job_id}").json()
    assert sum(e["generation_status"] == "completed" for e in job["storyboard"]) == done
    assert job["status"] == "cancelled"

    # A frame of the stopped storyboard can still be drawn, and only that one.
    target = frame(done + 1)
    page.click(tid("regenerate", target))
    page.click(tid("regenerate-submit", target))
    expect(status).to_have_attribute("data-status", "storyboard_ready")
    expect(page.locator(f"{target}[data-status=completed]")).to_have_count(1)
    expect(drawn).to_have_count(done + 1)
    expect(page.locator(tid("frame-failure", frame(10)))).to_contain_text("job was cancelled")


def wait_released(base_url: str, job_id: int) -> None:
    """Until the job's run has stopped and given its lease back (read from the job row)."""
    import time

    from storyboard import get_job

    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while (get_job(job_id) or {}).get("lease_owner") is not None:
        assert time.monotonic() < deadline, "the run never stopped"
        time.sleep(0.05)


def test_a_failed_frame_says_why_and_can_be_redrawn_with_a_new_image_prompt(
    scripted_page: Page,
) -> None:
    page = scripted_page
    page.goto("/")
    start_job(page, prompt="A perfume ad on a night beach", duration=20)
    wait_ready(page)
    failed = page.locator(frame(2))
    expect(failed).to_have_attribute("data-status", "failed")
    expect(failed.locator(tid("frame-failure"))).to_be_visible()
    expect(failed.locator(tid("frame-failure"))).to_have_text(NSFW)
    expect(failed.locator(".frame-placeholder-title")).to_have_text("Image failed")
    expect(failed.locator("img.frame-image")).to_be_hidden()
    for n in (1, 3, 4):
        expect(page.locator(tid("frame-failure", frame(n)))).to_be_hidden()
    expect(page.locator(tid("progress-message"))).to_have_text(
        "Storyboard ready (1 scenes failed)")
    expect(page.locator(tid("progress-count"))).to_contain_text("1 failed")
    save_screenshots(page, "failed-frame-1280x800")

    # Redraw it with an edited image prompt (the description stays as it was).
    description = failed.locator(tid("frame-description")).inner_text()
    page.click(tid("regenerate", frame(2)))
    page.fill(tid("regenerate-image-prompt", frame(2)),
              "Silhouette of a perfume bottle against moonlit waves, cinematic")
    page.click(tid("regenerate-submit", frame(2)))
    wait_ready(page)
    expect(failed).to_have_attribute("data-status", "completed")
    expect(failed.locator(tid("frame-failure"))).to_be_hidden()
    expect(failed.locator("img.frame-image")).to_have_attribute(
        "src", re.compile(r"scene-02-v1\.png$"))  # the first image this scene ever got
    expect(failed.locator(tid("frame-description"))).to_have_text(description)
    job_id = int(page.evaluate("location.hash").rsplit("/", 1)[1])
    job = page.request.get(f"/api/v2/jobs/{job_id}").json()
    assert job["storyboard"][1]["scene"]["image_prompt"] == (
        "Silhouette of a perfume bottle against moonlit waves, cinematic")
    expect(page.locator(tid("progress-message"))).to_have_text("Storyboard ready")


def test_conflict_from_the_service_is_shown_near_the_buttons(page: Page, base_url: str) -> None:
    # Freeze the page's view of the running job (no stream, then no polls), let the job
    # finish, then act on the stale view: the service's 409 reason must reach the user.
    page.route("**/events", lambda route: route.abort())
    page.goto("/")
    start_job(page, prompt="A short teaser", duration=30)
    expect(page.locator(tid("cancel"))).to_be_visible()
    page.route(re.compile(r"/api/v2/jobs/\d+$"), lambda route: route.abort())
    job_id = int(page.evaluate("location.hash").rsplit("/", 1)[1])
    wait_final_via_api(base_url, job_id)
    page.click(tid("cancel"))
    error = page.locator(tid("action-error"))
    expect(error).to_be_visible()
    expect(error).to_contain_text("already storyboard_ready")


def test_polls_when_the_event_stream_fails(page: Page) -> None:
    page.route("**/events", lambda route: route.abort())
    page.goto("/")
    start_job(page, prompt="Polling fallback", duration=15)
    wait_ready(page)
    expect(page.locator("[data-testid=frame][data-status=completed]")).to_have_count(3)


def test_api_docs_render_without_the_internet(page: Page) -> None:
    """/docs is Swagger UI from the app's own files: it renders, and (like every page here)
    makes no request outside the app."""
    page.goto("/docs")
    page.get_by_text("/api/v2/generate").first.wait_for()
    page.get_by_text("/api/v2/jobs/{job_id}/scenes/{scene_number}/regenerate").first.wait_for()


# ---------------------------------------------------------------- Plans, bible, review

# The lighthouse story in four shots (20 s): who is in each frame, as tests/story.py plans it.
WITH_MARA = (1, 3, 4)
WITHOUT_MARA = (2,)


def record_statuses(page: Page) -> None:
    """Keep every status the job's badge shows, however briefly."""
    page.evaluate("""() => {
        window.__statuses = [];
        const badge = document.querySelector('[data-testid=job-status]');
        new MutationObserver(() => window.__statuses.push(badge.dataset.status))
            .observe(badge, {attributes: true, attributeFilter: ['data-status']});
    }""")


def save_screenshot_of(page: Page, selector: str, name: str) -> None:
    """A screenshot of the screen with ``selector`` scrolled to its top, and the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    wait_until(page, NO_FINITE_ANIMATIONS)
    page.locator(selector).evaluate("el => el.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    page.screenshot(path=str(SCREENSHOTS / f"{name}-full.png"), full_page=True)


def test_a_story_planned_by_the_language_model_shows_shots_cast_and_bible(
    llm_page: Page,
) -> None:
    page = llm_page
    page.goto("/")
    start_job(page, prompt=LIGHTHOUSE, duration=20)
    wait_ready(page)
    expect(page.locator("[data-testid=frame]")).to_have_count(4)

    # Each frame: its beat, its shot as a storyboard artist notes it, who and where, what is said.
    expect(page.locator(tid("frame-beat", frame(1)))).to_have_text("Alone at the light")
    expect(page.locator(tid("frame-shot", frame(1)))).to_have_text("WS \u00b7 HIGH \u00b7 CRANE")
    expect(page.locator(tid("frame-shot", frame(2)))).to_have_text("INSERT \u00b7 HIGH \u00b7 STATIC")
    expect(page.locator(tid("frame-shot", frame(3)))).to_have_text(
        "CU \u00b7 EYE LEVEL \u00b7 DOLLY IN")
    expect(page.locator(tid("frame-shot", frame(4)))).to_have_text("WS \u00b7 LOW \u00b7 DOLLY OUT")
    expect(page.locator(tid("frame-characters", frame(1)))).to_have_text("Mara")
    expect(page.locator(tid("frame-characters", frame(4)))).to_have_text("Mara, Ezra")
    expect(page.locator(tid("frame-characters", frame(2)))).to_be_hidden()
    expect(page.locator(tid("frame-location", frame(2)))).to_have_text("The beach")
    expect(page.locator(tid("frame-location", frame(4)))).to_have_text("The hidden island")
    expect(page.locator(tid("frame-dialogue", frame(3)))).to_have_text("\u201cCome find me.\u201d")
    expect(page.locator(tid("frame-dialogue", frame(1)))).to_be_hidden()
    expect(page.locator("[data-testid=frame-stale]:visible")).to_have_count(0)

    # Who planned it, and the bible it planned.
    info = page.locator(tid("planner-info"))
    expect(info).to_contain_text("Planned by openai")
    expect(info).to_contain_text("gpt-4o-mini")
    expect(info).to_contain_text(re.compile(r"[\d,]+ tokens"))
    expect(page.locator(tid("planner-fallback"))).to_be_hidden()
    bible = page.locator(tid("bible"))
    expect(bible).to_be_visible()
    expect(bible.locator(tid("bible-story"))).to_contain_text("The Keeper's Message")
    characters = bible.locator(tid("bible-character"))
    expect(characters).to_have_count(2)
    expect(characters.nth(0)).to_contain_text("Mara")
    expect(characters.nth(0)).to_contain_text(MARA_LOOK)
    expect(characters.nth(1)).to_contain_text("Ezra")
    expect(bible.locator(tid("bible-location"))).to_have_count(4)
    expect(bible.locator(tid("bible-style"))).to_contain_text("moody 35mm film")

    # The bible folds away, and comes back, from the keyboard.
    page.focus(tid("bible-toggle"))
    page.keyboard.press("Enter")
    expect(page.locator(tid("bible-body"))).to_be_hidden()
    expect(page.locator(tid("bible-toggle"))).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    expect(page.locator(tid("bible-body"))).to_be_visible()

    # The service's refusal of an edit is shown in the panel, next to the form.
    page.route("**/api/v2/jobs/*/plan", lambda route: route.fulfill(
        status=409, json={"detail": "Job 1 is generating_storyboard; its plan can be edited "
                                    "once the job has finished"}))
    ezra = bible.locator("[data-testid=bible-character][data-id=ezra]")
    ezra.locator(tid("bible-edit")).click()
    ezra.locator(tid("bible-name")).fill("Ezra the Hermit")
    ezra.locator(tid("bible-save")).click()
    error = ezra.locator(tid("bible-error"))
    expect(error).to_be_visible()
    expect(error).to_contain_text("its plan can be edited once the job has finished")
    expect(ezra.locator(tid("bible-name"))).to_have_value("Ezra the Hermit")  # nothing lost


def test_a_bible_edit_marks_the_frames_it_changes_stale_and_redraws_them(
    llm_page: Page, llm_url: str,
) -> None:
    page = llm_page
    page.goto("/")
    start_job(page, prompt=LIGHTHOUSE, duration=20)
    wait_ready(page)
    job_id = int(page.evaluate("location.hash").rsplit("/", 1)[1])

    # Edit Mara's look in place; Escape first leaves the form without a change.
    mara = page.locator("[data-testid=bible-character][data-id=mara]")
    edit = mara.locator(tid("bible-edit"))
    edit.click()
    expect(mara.locator(tid("bible-name"))).to_be_focused()
    page.keyboard.press("Escape")
    expect(mara.locator(tid("bible-form"))).to_be_hidden()
    expect(edit).to_be_focused()
    page.keyboard.press("Enter")
    look = mara.locator(tid("bible-look"))
    expect(look).to_have_value(MARA_LOOK)
    look.fill("young woman, short red hair, green raincoat, silver compass on a cord")
    mara.locator(tid("bible-save")).click()
    expect(mara.locator(tid("bible-form"))).to_be_hidden()
    expect(mara).to_contain_text("green raincoat")
    expect(page.locator(tid("bible-status"))).to_contain_text("3 frames to redraw")

    # Only the frames with Mara in them are stale; nothing was drawn.
    for n in WITH_MARA:
        stale = page.locator(tid("frame-stale", frame(n)))
        expect(stale).to_be_visible()
        expect(stale).to_have_attribute("title", re.compile("plan changed"))
    for n in WITHOUT_MARA:
        expect(page.locator(tid("frame-stale", frame(n)))).to_be_hidden()
    expect(page.locator(tid("job-status"))).to_have_attribute("data-status", "storyboard_ready")
    redraw = page.locator(tid("rerender-stale"))
    expect(redraw).to_have_text("Redraw 3 stale frames")
    save_screenshots(page, "bible-1280x800")

    # One button redraws them, live; the earlier images are kept as versions.
    record_statuses(page)
    redraw.click()
    wait_until(page, "window.__statuses.includes('generating_storyboard')")
    wait_ready(page)
    expect(page.locator("[data-testid=frame-stale]:visible")).to_have_count(0)
    expect(page.locator(tid("stale-notice"))).to_be_hidden()
    for n in WITH_MARA:
        expect(page.locator(tid("frame-versions", frame(n)))).to_contain_text("1 earlier version")
        expect(page.locator(f"{frame(n)} img.frame-image")).to_have_attribute(
            "src", re.compile(rf"scene-0{n}-v2\.png$"))
    for n in WITHOUT_MARA:
        expect(page.locator(tid("frame-versions", frame(n)))).to_be_hidden()
        expect(page.locator(f"{frame(n)} img.frame-image")).to_have_attribute(
            "src", re.compile(rf"scene-0{n}-v1\.png$"))
    job = httpx.get(f"{llm_url}/api/v2/jobs/{job_id}", timeout=10).json()
    assert "green raincoat" in job["plan"]["characters"][0]["look"]
    assert "green raincoat" in job["storyboard"][0]["scene"]["image_prompt"]


def test_a_plan_is_reviewed_edited_and_then_rendered(llm_page: Page, llm_url: str) -> None:
    page = llm_page
    page.goto("/")
    page.check(tid("review-plan"))
    start_job(page, prompt=LIGHTHOUSE, duration=20)
    status = page.locator(tid("job-status"))
    expect(status).to_have_attribute("data-status", "plan_ready")
    expect(status).to_have_text("Plan ready")
    job_id = int(page.evaluate("location.hash").rsplit("/", 1)[1])

    # Free sketches of the plan, and the button that pays for the images.
    frames = page.locator("[data-testid=frame]")
    expect(frames).to_have_count(4)
    for n in range(1, 5):
        expect(page.locator(f"{frame(n)} img.frame-image")).to_have_attribute(
            "src", re.compile(rf"scene-0{n}-plan-[0-9a-f]{{10}}\.png$"))
        expect(page.locator(tid("frame-sketch", frame(n)))).to_be_visible()
    expect(page.locator(tid("render-plan"))).to_be_visible()
    expect(page.locator(tid("cancel"))).to_be_visible()
    expect(page.locator(tid("approve"))).to_be_hidden()
    expect(page.locator(tid("bible"))).to_be_visible()

    # Edit a shot: its line and its sketch change at once, and no run starts.
    record_statuses(page)
    sketch = page.locator(f"{frame(2)} img.frame-image")
    before = sketch.get_attribute("src")
    page.click(tid("regenerate", frame(2)))
    form = page.locator(tid("regenerate-form", frame(2)))
    expect(form.locator(tid("regenerate-shot-size"))).to_have_value("insert")
    form.locator(tid("regenerate-shot-size")).select_option("close_up")
    form.locator("[data-testid=regenerate-character][value=mara]").check()
    page.click(tid("regenerate-submit", frame(2)))
    expect(form).to_be_hidden()
    expect(page.locator(tid("frame-shot", frame(2)))).to_have_text("CU \u00b7 HIGH \u00b7 STATIC")
    expect(page.locator(tid("frame-characters", frame(2)))).to_have_text("Mara")
    expect(sketch).not_to_have_attribute("src", before)
    expect(status).to_have_attribute("data-status", "plan_ready")
    assert set(page.evaluate("window.__statuses")) <= {"plan_ready"}
    scene = httpx.get(f"{llm_url}/api/v2/jobs/{job_id}", timeout=10).json()["storyboard"][1]
    assert scene["scene"]["shot_size"] == "close_up" and scene["scene"]["characters"] == ["mara"]
    save_screenshots(page, "plan-review-1280x800")

    # Render: the real images are made from the reviewed plan, live.
    page.click(tid("render-plan"))
    wait_until(page, "window.__statuses.includes('generating_storyboard')")
    wait_ready(page)
    for n in range(1, 5):
        expect(page.locator(f"{frame(n)} img.frame-image")).to_have_attribute(
            "src", re.compile(rf"scene-0{n}-v1\.png$"))
        expect(page.locator(tid("frame-sketch", frame(n)))).to_be_hidden()
    expect(page.locator(tid("frame-shot", frame(2)))).to_have_text("CU \u00b7 HIGH \u00b7 STATIC")
    expect(page.locator(tid("render-plan"))).to_be_hidden()
    expect(page.locator(tid("approve"))).to_be_visible()


def test_the_language_models_failure_is_shown_and_the_rules_plan_is_drawn(
    llm_page: Page, fake_llm: FakeLLM,
) -> None:
    page = llm_page
    fake_llm.answer("not json", times=2)  # the answer, and the answer to the repair request
    page.goto("/")
    start_job(page, prompt=LIGHTHOUSE, duration=20)
    notice = page.locator(tid("planner-fallback"))
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("The language model\u2019s plan could not be used")
    expect(notice).to_contain_text("no usable plan")
    expect(notice).to_contain_text("planned with the rules")
    wait_ready(page)
    expect(page.locator("[data-testid=frame][data-status=completed]")).to_have_count(4)
    expect(page.locator(tid("planner-info"))).to_contain_text("Planned by the rules")
    expect(page.locator(tid("frame-beat", frame(1)))).to_have_text("Opening/Hook")
    expect(page.locator(tid("frame-shot", frame(1)))).not_to_have_text("")
    expect(page.locator(tid("bible-characters-empty"))).to_be_visible()


def test_phone_width_bible_and_shot_form_fit(llm_phone: Page) -> None:
    phone = llm_phone
    phone.goto("/")
    start_job(phone, prompt=LIGHTHOUSE, duration=20)
    wait_ready(phone)
    expect(phone.locator(tid("bible"))).to_be_visible()
    no_horizontal_scroll(phone, 390)

    mara = phone.locator("[data-testid=bible-character][data-id=mara]")
    mara.locator(tid("bible-edit")).click()
    mara.locator(tid("bible-look")).fill("young woman, short red hair, green raincoat")
    mara.locator(tid("bible-save")).click()
    expect(phone.locator(tid("rerender-stale"))).to_be_visible()
    ezra = phone.locator("[data-testid=bible-character][data-id=ezra]")
    ezra.locator(tid("bible-edit")).click()
    expect(ezra.locator(tid("bible-form"))).to_be_visible()
    no_horizontal_scroll(phone, 390)
    save_screenshot_of(phone, tid("bible"), "bible-390x844")
    ezra.locator(tid("bible-cancel")).click()

    phone.click(tid("regenerate", frame(3)))
    expect(phone.locator(tid("regenerate-shot", frame(3)))).to_be_visible()
    no_horizontal_scroll(phone, 390)
