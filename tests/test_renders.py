"""The animatic as the API, the ZIP and the command serve it: an H.264 MP4 of the job's own
board, rendered once per version of the board and kept, rendered anew when the board changes."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import av

from storyboard.config import Settings

from .test_cli import storyboard
from .test_review import ThreadDispatch, client, wait_for

FPS = 24


def probe(data: bytes) -> tuple[str, str, int, int, float]:
    """(codec, pixel format, width, height, seconds) of an MP4."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        seconds = container.duration / av.time_base  # type: ignore[operator]
        return (stream.codec_context.name, stream.codec_context.pix_fmt, stream.width,
                stream.height, seconds)


def animatics(settings: Settings, job_id: int) -> list[Path]:
    return sorted((settings.media_dir / "jobs" / str(job_id)).glob("animatic-*.mp4"))


def test_the_endpoint_renders_once_per_version_and_anew_after_a_redraw(
    settings: Settings, tmp_path: Path,
) -> None:
    with client(settings, dispatch=ThreadDispatch(settings)) as c:
        job_id = c.post("/api/v2/generate", json={"prompt": "A robot exploring Mars",
                                                  "duration": 15,
                                                  "aspect_ratio": "9:16"}).json()["job_id"]
        wait_for(c, job_id)
        zip_before = zipfile.ZipFile(io.BytesIO(c.get(f"/api/v2/jobs/{job_id}/export.zip")
                                                .content))
        assert "animatic.mp4" not in zip_before.namelist()  # not rendered yet: not waited for

        first = c.get(f"/api/v2/jobs/{job_id}/export.mp4")
        assert first.status_code == 200, first.text
        assert first.headers["content-type"] == "video/mp4"
        assert first.headers["cache-control"] == "private, no-cache"
        codec, pix_fmt, width, height, seconds = probe(first.content)
        assert (codec, pix_fmt, width, height) == ("h264", "yuv420p", 720, 1280)
        assert abs(seconds - 15) <= 1 / FPS  # as long as the board, to within a frame
        [kept] = animatics(settings, job_id)
        made = kept.stat().st_mtime_ns

        again = c.get(f"/api/v2/jobs/{job_id}/export.mp4")
        assert again.content == first.content
        assert animatics(settings, job_id) == [kept] and kept.stat().st_mtime_ns == made
        zip_after = zipfile.ZipFile(io.BytesIO(c.get(f"/api/v2/jobs/{job_id}/export.zip")
                                               .content))
        assert zip_after.read("animatic.mp4") == first.content

        # A redraw changes the board: the next animatic is a new render; the old file goes.
        c.post(f"/api/v2/jobs/{job_id}/scenes/2/regenerate",
               json={"description": "The rover's wheel in red dust"})
        wait_for(c, job_id)
        changed = c.get(f"/api/v2/jobs/{job_id}/export.mp4")
        assert changed.status_code == 200 and changed.content != first.content
        [renewed] = animatics(settings, job_id)
        assert renewed != kept and not kept.exists()

    out = tmp_path / "board.mp4"
    result = storyboard("export", str(job_id), "--format", "mp4", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == changed.content  # the kept render, not a second one
    assert animatics(settings, job_id) == [renewed]


def test_a_job_without_a_storyboard_has_no_animatic(settings: Settings) -> None:
    with client(settings, dispatch=lambda *_: None) as c:  # never runs: stays pending
        job_id = c.post("/api/v2/generate", json={"prompt": "A robot exploring Mars",
                                                  "duration": 15}).json()["job_id"]
        response = c.get(f"/api/v2/jobs/{job_id}/export.mp4")
    assert response.status_code == 409
    assert "no storyboard" in response.json()["detail"]
