"""The PDF sheet and the ZIP download, built from jobs the real task ran with sketch images."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

from storyboard import JobResponse, generate_storyboard_task, save_generated_video
from storyboard.api.views import job_response
from storyboard.config import Settings
from storyboard.db import get_engine, get_job_row
from storyboard.errors import PermanentImageError
from storyboard.exports import build_pdf, build_zip
from storyboard.jobs.review import request_regeneration
from storyboard.storage import path_for_url, save_image, url_for

from .providers import ScriptedProvider

PROMPT = "A robot exploring Mars"


def run_job(settings: Settings, prompt: str = PROMPT, duration: int = 30,
            aspect_ratio: str = "16:9", provider: ScriptedProvider | None = None) -> JobResponse:
    """Save a job, run the real task on it (sketch images unless a provider is given)."""
    job_id = save_generated_video(
        prompt=prompt, parameters={"duration": duration, "style": "cinematic",
                                   "aspect_ratio": aspect_ratio})
    generate_storyboard_task(job_id, provider=provider)
    return reload(settings, job_id)


def reload(settings: Settings, job_id: int) -> JobResponse:
    row = get_job_row(get_engine(settings), job_id)
    assert row is not None
    return job_response(row)


def pdf_text(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def flat(text: str) -> str:
    # Wrapped lines come back with newlines; compare text with single spaces.
    return " ".join(text.split())


@pytest.fixture
def job(settings: Settings) -> JobResponse:
    job = run_job(settings)
    assert job.status == "storyboard_ready" and job.storyboard and len(job.storyboard) == 6
    return job


def test_pdf_is_a_one_page_sheet_with_title_frames_and_page_number(
    settings: Settings, job: JobResponse
) -> None:
    data = build_pdf(job, settings.media_dir)
    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1  # 6 frames fit one landscape page
    page = reader.pages[0]
    assert page.mediabox.width > page.mediabox.height
    assert reader.metadata is not None and reader.metadata.title == PROMPT
    assert len(page.images) == 6
    text = flat(page.extract_text())
    assert text.startswith(PROMPT)
    assert job.storyboard is not None
    for entry in job.storyboard:
        assert f"Scene {entry.scene.scene_number}" in text
        assert entry.scene.description in text
    for beat in ("OPENING/HOOK", "CONTEXT/SETUP", "CONTENT/PRODUCT SHOWCASE", "CLOSING/CTA"):
        assert beat in text
    assert "5 s" in text
    assert "Storyboard ready" in text and "Awaiting approval" in text
    assert "Page 1 of 1" in text
    assert f"Storyboard #{job.job_id}" in text
    assert job.created_at.strftime("%d %b %Y") in text


def test_pdf_shows_approval(settings: Settings, job: JobResponse) -> None:
    approved = job.model_copy(update={"approved": True,
                                      "approved_at": datetime(2025, 3, 4, 15, 6, tzinfo=UTC)})
    text = flat(pdf_text(build_pdf(approved, settings.media_dir))[0])
    assert "Approved" in text and "04 Mar 2025, 15:06 UTC" in text
    assert "Awaiting approval" not in text


def test_pdf_numbers_pages_when_frames_spill_over(settings: Settings) -> None:
    job = run_job(settings, duration=50)  # 10 scenes: 6 on the first page, 4 on the second
    pages = pdf_text(build_pdf(job, settings.media_dir))
    assert len(pages) == 2
    assert "Page 1 of 2" in pages[0] and "Page 2 of 2" in pages[1]
    assert "Scene 6" in pages[0] and "Scene 7" not in pages[0]
    assert all(f"Scene {n}" in pages[1] for n in (7, 8, 9, 10))
    assert PROMPT in pages[1]  # every page carries the title


def test_pdf_portrait_frames(settings: Settings) -> None:
    job = run_job(settings, duration=20, aspect_ratio="9:16")
    reader = PdfReader(io.BytesIO(build_pdf(job, settings.media_dir)))
    assert len(reader.pages) == 1 and len(reader.pages[0].images) == 4
    assert "9:16" in reader.pages[0].extract_text()


def test_pdf_placeholder_says_why_a_scene_failed(settings: Settings) -> None:
    provider = ScriptedProvider(script={3: [PermanentImageError("NSFW content detected")]})
    job = run_job(settings, provider=provider)
    assert job.storyboard is not None and job.storyboard[2].generation_status == "failed"
    reader = PdfReader(io.BytesIO(build_pdf(job, settings.media_dir)))
    text = flat(reader.pages[0].extract_text())
    assert "Image failed" in text and "NSFW content detected" in text
    assert "Scene 3" in text and job.storyboard[2].scene.description in text
    assert len(reader.pages[0].images) == 5


def test_pdf_without_a_storyboard_explains_why(settings: Settings) -> None:
    job_id = save_generated_video(prompt=PROMPT, parameters={"duration": 1000, "style": "x"})
    generate_storyboard_task(job_id)
    job = reload(settings, job_id)
    assert job.status == "failed" and not job.storyboard
    pages = pdf_text(build_pdf(job, settings.media_dir))
    assert len(pages) == 1
    assert "Failed" in pages[0] and "must be between 5 and 300 seconds" in flat(pages[0])


def test_pdf_long_unicode_prompt_is_cut_to_fit(settings: Settings) -> None:
    prompt = ("Un robot explorant Mars à l'aube — «naïve» façade, Ωμέγα, Straße. " * 40)[:2000]
    job = run_job(settings, prompt=prompt, duration=15)
    data = build_pdf(job, settings.media_dir)
    pages = pdf_text(data)
    assert len(pages) == 1
    text = flat(pages[0])
    # Latin text always survives; Greek needs DejaVu, which not every machine has.
    assert text.startswith("Un robot explorant Mars à l'aube — «naïve» façade, ")
    assert "\u2026" in text  # title and descriptions cut at a word, not overflowing the page
    assert text.count("Straße") < 40


def test_pdf_keeps_a_long_unbroken_word(settings: Settings) -> None:
    """A word too long for a line (or a script without spaces) is cut mid-word, not dropped."""
    prompt = "Launch video for " + "Supercalifragilisticexpialidocious" * 6
    job = run_job(settings, prompt=prompt, duration=15)
    text = flat(pdf_text(build_pdf(job, settings.media_dir))[0])
    assert "Launch video for Supercalifragilistic" in text


def test_pdf_draws_webp_images(settings: Settings, job: JobResponse) -> None:
    webp = with_webp_first_scene(settings, job)
    reader = PdfReader(io.BytesIO(build_pdf(webp, settings.media_dir)))
    assert len(reader.pages[0].images) == 6


def with_webp_first_scene(settings: Settings, job: JobResponse) -> JobResponse:
    """The job with scene 1's image stored as WebP (what Replicate serves by default)."""
    assert job.storyboard and job.storyboard[0].image_url
    source = path_for_url(settings.media_dir, job.storyboard[0].image_url)
    assert source is not None
    buffer = io.BytesIO()
    Image.open(source).save(buffer, "WEBP")
    path = save_image(settings.media_dir, job.job_id, 1, buffer.getvalue(), "webp", version=9)
    entries = [e.model_copy(deep=True) for e in job.storyboard]
    entries[0].image_url = url_for(settings.media_dir, path)
    return job.model_copy(update={"storyboard": entries})


def test_zip_has_every_image_the_json_and_a_contact_sheet(
    settings: Settings, job: JobResponse
) -> None:
    archive = zipfile.ZipFile(io.BytesIO(build_zip(job, settings.media_dir)))
    assert archive.testzip() is None
    images = [f"scene-{n:02d}.png" for n in range(1, 7)]
    assert archive.namelist() == [*images, "storyboard.json", "index.html", "shotlist.csv"]
    assert job.storyboard is not None
    for name, entry in zip(images, job.storyboard, strict=True):
        assert entry.image_url is not None
        path = path_for_url(settings.media_dir, entry.image_url)
        assert path is not None and archive.read(name) == path.read_bytes()
        assert archive.read(name).startswith(b"\x89PNG")
    saved = JobResponse.model_validate(json.loads(archive.read("storyboard.json")))
    assert saved == job
    sheet = archive.read("index.html").decode()
    assert all(f'src="{name}"' in sheet for name in images)
    assert PROMPT in sheet


def test_zip_is_the_same_for_the_same_job(settings: Settings, job: JobResponse) -> None:
    assert build_zip(job, settings.media_dir) == build_zip(job, settings.media_dir)


def test_zip_keeps_real_extensions(settings: Settings, job: JobResponse) -> None:
    webp = with_webp_first_scene(settings, job)
    archive = zipfile.ZipFile(io.BytesIO(build_zip(webp, settings.media_dir)))
    assert "scene-01.webp" in archive.namelist() and "scene-01.png" not in archive.namelist()
    assert archive.read("scene-01.webp")[8:12] == b"WEBP"


def test_zip_leaves_out_missing_images_but_keeps_their_scenes(settings: Settings) -> None:
    provider = ScriptedProvider(script={3: [PermanentImageError("NSFW content detected")]})
    job = run_job(settings, provider=provider)
    assert job.storyboard is not None
    # An image URL that tries to leave the media folder is treated as missing, not read.
    entries = [e.model_copy(deep=True) for e in job.storyboard]
    entries[4].image_url = "/media/../../../etc/passwd"
    job = job.model_copy(update={"storyboard": entries})
    archive = zipfile.ZipFile(io.BytesIO(build_zip(job, settings.media_dir)))
    names = archive.namelist()
    assert "scene-03.png" not in names and "scene-05.png" not in names
    assert [n for n in names if n.startswith("scene-")] == [
        "scene-01.png", "scene-02.png", "scene-04.png", "scene-06.png"]
    saved = json.loads(archive.read("storyboard.json"))
    assert len(saved["storyboard"]) == 6
    assert saved["storyboard"][2]["error"] == "NSFW content detected"
    sheet = archive.read("index.html").decode()
    assert "NSFW content detected" in sheet
    assert "No image: image file not found" in sheet  # scene 5: drawn, but no file to show


def test_exports_use_the_current_version_after_a_regeneration(
    settings: Settings, job: JobResponse
) -> None:
    assert job.storyboard is not None and job.storyboard[1].image_url
    first = path_for_url(settings.media_dir, job.storyboard[1].image_url)
    request_regeneration(get_engine(settings), job.job_id, 2,
                         description="Close-up of the rover's dusty nameplate")
    generate_storyboard_task(job.job_id)
    again = reload(settings, job.job_id)
    assert again.storyboard is not None
    current = again.storyboard[1]
    assert current.image_url and current.image_url != job.storyboard[1].image_url
    assert len(current.versions) == 1

    archive = zipfile.ZipFile(io.BytesIO(build_zip(again, settings.media_dir)))
    path = path_for_url(settings.media_dir, current.image_url)
    assert path is not None and first is not None
    assert archive.read("scene-02.png") == path.read_bytes() != first.read_bytes()
    text = flat(pdf_text(build_pdf(again, settings.media_dir))[0])
    assert "Close-up of the rover's dusty nameplate" in text
    assert "1 earlier version" in text


def test_pdf_reads_images_only_under_the_media_folder(tmp_path: Path, settings: Settings,
                                                      job: JobResponse) -> None:
    # The same job against an empty media folder: placeholders, no error.
    reader = PdfReader(io.BytesIO(build_pdf(job, tmp_path / "elsewhere")))
    assert len(reader.pages[0].images) == 0
    text = flat(reader.pages[0].extract_text())
    assert text.count("No image") == 6 and "Image file not found" in text
