"""Share links and comments: a board reviewed by people who are not its authors."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..access import Action, ShareInfo, create_share, list_shares, revoke_share
from ..db.models import utcnow
from ..errors import JobNotFoundError
from ..jobs.comments import CommentInfo, add_comment, list_comments, request_changes
from ..schemas import clean_text
from .access import Caller, CallerDep
from .deps import EngineDep, JobId, PlainNumber

__all__ = ["router"]

router = APIRouter(prefix="/api/v2/jobs", tags=["sharing"])

MAX_COMMENT_LENGTH = 2000


class ShareRequest(BaseModel):
    """A share link's terms: who it is for, what it allows, how long it lasts."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(default=None, min_length=1, max_length=200,
                              description="Who the link is for (shown as the reviewer).")
    expires_in_hours: int | None = Field(default=None, ge=1, le=24 * 365, strict=True,
                                         description="Hours until it stops working (none: "
                                                     "until revoked).")
    allow_comments: bool = Field(default=True, strict=True)
    allow_approve: bool = Field(default=False, strict=True,
                                description="Whether the reviewer may approve or request "
                                            "changes.")

    @field_validator("label")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        return None if value is None else clean_text(value)


class CommentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_COMMENT_LENGTH)
    scene_number: int | None = Field(default=None, ge=1, le=10, strict=True,
                                     description="The frame; none: the whole board.")
    author: str | None = Field(default=None, min_length=1, max_length=100,
                               description="A reviewer's name (a token's owner is known).")

    @field_validator("text", "author")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        return None if value is None else clean_text(value)


def _share_out(info: ShareInfo, token: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": info.id, "label": info.label, "allow_comments": info.allow_comments,
        "allow_approve": info.allow_approve, "created_by": info.created_by,
        "created_at": info.created_at, "expires_at": info.expires_at,
        "revoked_at": info.revoked_at, "active": info.live(utcnow()),
    }
    if token is not None:  # shown once, as API tokens are
        out["token"] = token
        out["url"] = f"/s#{token}"
    return out


def _comment_out(info: CommentInfo) -> dict[str, Any]:
    return {"id": info.id, "scene_number": info.scene_number, "kind": info.kind,
            "author": info.author, "text": info.text, "via": info.via,
            "created_at": info.created_at}


def _author(caller: Caller, given: str | None) -> tuple[str, str | None]:
    """Who wrote it, and through what: a token's owner is who they are; a reviewer through a
    share link gives a name (else the link's label)."""
    principal = caller.principal
    if principal.kind == "share":
        return given or principal.name, f"share link {principal.share_id}"
    if principal.kind == "token":
        return principal.name, "token"
    return given or principal.name, None


@router.post("/{job_id}/share", status_code=201, summary="Make a share link for reviewers",
             responses={404: {"description": "No such job (or not yours)"}})
def share(job_id: JobId, body: ShareRequest, engine: EngineDep,
          caller: CallerDep) -> dict[str, Any]:
    """An unguessable, read-only link (``/s#<token>``) that opens the board in the studio with
    no token: frames, plan, animatic and comments; comments unless turned off; approving and
    requesting changes only with ``allow_approve``. Shown once; may expire; revocable."""
    caller.job(job_id, Action.SHARE)
    expires: datetime | None = None
    if body.expires_in_hours is not None:
        expires = utcnow() + timedelta(hours=body.expires_in_hours)
    token, info = create_share(engine, job_id, created_by=caller.principal.name,
                               label=body.label, allow_comments=body.allow_comments,
                               allow_approve=body.allow_approve, expires_at=expires)
    return _share_out(info, token)


@router.get("/{job_id}/shares", summary="The job's share links (without their tokens)")
def shares(job_id: JobId, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    caller.job(job_id, Action.SHARE)
    return {"shares": [_share_out(s) for s in list_shares(engine, job_id)]}


@router.delete("/{job_id}/shares/{share_id}", status_code=204,
               summary="Revoke a share link", response_class=Response)
def revoke(job_id: JobId,
           share_id: Annotated[int, PlainNumber, Path(ge=1, le=2**31 - 1)],
           engine: EngineDep, caller: CallerDep) -> Response:
    caller.job(job_id, Action.SHARE)
    if not revoke_share(engine, job_id, share_id):
        raise JobNotFoundError(job_id)  # no such live link on this job
    return Response(status_code=204)


@router.get("/{job_id}/comments", summary="Comments on the board and its frames")
def comments(job_id: JobId, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    caller.job(job_id)
    return {"comments": [_comment_out(c) for c in list_comments(engine, job_id)]}


@router.post("/{job_id}/comments", status_code=201, summary="Comment on the board or a frame",
             responses={403: {"description": "A share link that does not allow comments"}})
def comment(job_id: JobId, body: CommentRequest, engine: EngineDep,
            caller: CallerDep) -> dict[str, Any]:
    caller.job(job_id, Action.COMMENT)
    author, via = _author(caller, body.author)
    return _comment_out(add_comment(engine, job_id, text=body.text, author=author,
                                    scene_number=body.scene_number, via=via))


@router.post("/{job_id}/request-changes", status_code=201,
             summary="Ask for changes: a comment that takes the approval back",
             responses={403: {"description": "A share link that does not allow it"},
                        409: {"description": "The storyboard is not ready"}})
def changes(job_id: JobId, body: CommentRequest, engine: EngineDep,
            caller: CallerDep) -> dict[str, Any]:
    caller.job(job_id, Action.APPROVE)
    author, via = _author(caller, body.author)
    return _comment_out(request_changes(engine, job_id, text=body.text, author=author,
                                        scene_number=body.scene_number, via=via))
