"""The shot list: one row per scene, RFC 4180, UTF-8, timecodes, safe in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storyboard.config import Settings
from storyboard.plan import Character, Location, Plan, PlannerInfo, PlanStyle
from storyboard.schemas import JobResponse, Scene, StoryboardEntry, VideoProgress
from storyboard.shotlist import COLUMNS, build_shot_list, timecode
from storyboard.shots import CameraAngle, CameraMovement, ShotSize, Transition

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def job(entries: list[StoryboardEntry], plan: Plan | None = None) -> JobResponse:
    return JobResponse(job_id=7, status="storyboard_ready", progress=VideoProgress(),
                       storyboard=entries, created_at=NOW, updated_at=NOW, prompt="p",
                       parameters={"duration": 12}, plan=plan)


def scene(n: int, duration: float, **fields: object) -> Scene:
    return Scene(scene_number=n, description=f"d{n}", duration=duration, image_prompt=f"p{n}",
                 **fields)  # type: ignore[arg-type]


def rows(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))


@pytest.mark.parametrize(("seconds", "code"), [
    (0, "00:00:00:00"), (5, "00:00:05:00"), (4.5, "00:00:04:12"), (61.25, "00:01:01:06"),
    (3600, "01:00:00:00"), (4.67, "00:00:04:16")])
def test_timecodes_are_smpte_at_24_frames(seconds: float, code: str) -> None:
    assert timecode(seconds) == code


def test_one_row_per_scene_with_every_column() -> None:
    plan = Plan(title="t", logline="l", style=PlanStyle(look="", palette="", lighting=""),
                characters=[Character(id="mara", name="Mara", look="x"),
                            Character(id="ezra", name="Ezra", look="y")],
                locations=[Location(id="sea", name="The open sea", look="z")],
                planner=PlannerInfo(kind="openai", model="m"))
    entries = [
        StoryboardEntry(scene=scene(1, 4.5, beat="Storm", shot_size=ShotSize.MEDIUM_CLOSE_UP,
                                    camera_angle=CameraAngle.LOW,
                                    camera_movement=CameraMovement.DOLLY_IN, lighting="storm",
                                    characters=["mara", "ezra"], location="sea",
                                    dialogue='She said "go", then ran', transition=Transition.DISSOLVE),
                        image_url="/media/jobs/7/scene-01-v2.webp", generation_status="completed"),
        StoryboardEntry(scene=scene(2, 7.5), generation_status="failed", error="NSFW"),
    ]
    table = rows(build_shot_list(job(entries, plan)))
    assert table[0] == list(COLUMNS)
    first, second = (dict(zip(COLUMNS, row, strict=True)) for row in table[1:])
    assert first == {
        "scene": "1", "start": "00:00:00:00", "end": "00:00:04:12", "duration": "4.5",
        "beat": "Storm", "shot size": "medium close up", "angle": "low", "movement": "dolly in",
        "lighting": "storm", "characters": "Mara, Ezra", "location": "The open sea",
        "description": "d1", "dialogue": 'She said "go", then ran', "transition": "dissolve",
        "image prompt": "p1", "image file": "scene-01.webp", "status": "completed"}
    assert (second["start"], second["end"], second["image file"], second["status"]) == (
        "00:00:04:12", "00:00:12:00", "", "failed")
    assert second["beat"] == "Closing/CTA"  # a scene without a planned beat: the spec's


def test_rfc_4180_quoting_and_formula_cells_are_neutralised() -> None:
    nasty = ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "line one\nline two, \"q\""]
    entries = [StoryboardEntry(scene=Scene(scene_number=n + 1, description=text, duration=1,
                                           image_prompt=text)) for n, text in enumerate(nasty)]
    text = build_shot_list(job(entries))
    assert "\r\n" in text and text.count("\r\n") == len(nasty) + 1  # CRLF rows; the \n inside
    parsed = rows(text)[1:]
    assert [r[COLUMNS.index("description")] for r in parsed] == [
        "'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)", "line one\nline two, \"q\""]
    assert '"line one\nline two, ""q"""' in text  # quoted, quotes doubled
    text.encode("utf-8")  # UTF-8 through and through


def test_the_endpoint_the_zip_and_the_command_give_the_shot_list(settings: Settings,
                                                                  tmp_path: Path) -> None:
    from .test_cli import storyboard
    from .test_review import ThreadDispatch, client, wait_for

    with client(settings, dispatch=ThreadDispatch(settings)) as c:
        job_id = c.post("/api/v2/generate", json={"prompt": "A robot, \"=1+1\"",
                                                  "duration": 15}).json()["job_id"]
        wait_for(c, job_id)
        response = c.get(f"/api/v2/jobs/{job_id}/export.csv")
        archive = zipfile.ZipFile(io.BytesIO(c.get(f"/api/v2/jobs/{job_id}/export.zip").content))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="storyboard-1.csv"' in response.headers["content-disposition"]
    table = rows(response.content.decode("utf-8"))
    assert len(table) == 4 and table[1][COLUMNS.index("image file")] == "scene-01.png"
    assert "shotlist.csv" in archive.namelist()
    assert archive.read("shotlist.csv").decode("utf-8") == response.content.decode("utf-8")
    assert "scene-01.png" in archive.namelist()  # the file the row names is in the ZIP
    out = tmp_path / "list.csv"
    result = storyboard("export", str(job_id), "--format", "csv", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == response.content
    assert json.loads(archive.read("storyboard.json"))["job_id"] == job_id
