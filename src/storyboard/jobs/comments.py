"""Comments on a board and its frames, and requests for changes.

A comment is a note on the board (no scene) or on one frame, with who wrote it and through what
(a token's owner, a share link). A request for changes is a comment that also takes the board's
approval back: the board is reviewed again once it is changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from ..db import require_job_row, update_statement
from ..db.models import Comment, utcnow
from ..errors import InvalidRequestError, JobStateError
from ..schemas import JobStatus
from .records import saved_entries

__all__ = ["CommentInfo", "add_comment", "list_comments", "request_changes"]

KINDS = ("comment", "changes")


@dataclass(frozen=True)
class CommentInfo:
    id: int
    job_id: int
    scene_number: int | None
    kind: str
    author: str
    text: str
    via: str | None
    created_at: datetime


def _info(row: Comment) -> CommentInfo:
    return CommentInfo(row.id, row.job_id, row.scene_number, row.kind, row.author, row.text,
                       row.via, row.created_at)


def _check_scene(engine: Engine, job_id: int, scene_number: int | None) -> None:
    if scene_number is None:
        return
    scenes = len(saved_entries(require_job_row(engine, job_id)))
    if not 1 <= scene_number <= max(scenes, 1) or not scenes:
        raise InvalidRequestError("scene_number", f"must be between 1 and {scenes}"
                                  if scenes else "the board has no frames yet")


def list_comments(engine: Engine, job_id: int) -> list[CommentInfo]:
    with Session(engine) as session:
        rows = session.scalars(select(Comment).where(Comment.job_id == job_id)
                               .order_by(Comment.id))
        return [_info(r) for r in rows]


def add_comment(engine: Engine, job_id: int, *, text: str, author: str,
                scene_number: int | None = None, via: str | None = None) -> CommentInfo:
    _check_scene(engine, job_id, scene_number)
    row = Comment(job_id=job_id, scene_number=scene_number, kind="comment", author=author,
                  text=text, via=via, created_at=utcnow())
    with Session(engine, expire_on_commit=False) as session, session.begin():
        session.add(row)
    return _info(row)


def request_changes(engine: Engine, job_id: int, *, text: str, author: str,
                    scene_number: int | None = None, via: str | None = None) -> CommentInfo:
    """Ask for changes on a ready board: the note is kept and the approval taken back, in one
    transaction (409 while the board is not ready)."""
    _check_scene(engine, job_id, scene_number)
    now = utcnow()
    with engine.begin() as conn:
        changed = conn.execute(update_statement(
            job_id, only_status=[JobStatus.STORYBOARD_READY.value],
            values={"approved": False, "approved_at": None, "approved_by": None,
                    "updated_at": now})).rowcount
        if not changed:
            row = require_job_row(engine, job_id)
            raise JobStateError(f"Job {job_id} is {row.status}; changes can be requested on a "
                                "ready storyboard")
        new_id = conn.execute(insert(Comment).values(
            job_id=job_id, scene_number=scene_number, kind="changes", author=author,
            text=text, via=via, created_at=now)).inserted_primary_key[0]  # type: ignore[index]
    return CommentInfo(int(new_id), job_id, scene_number, "changes", author, text, via, now)
