"""Who is calling, and what they may see: the API's side of ``storyboard.access``.

Every route asks for a ``Caller``: the principal the request acts as (from its bearer token, a
share link's token, or a signed ``access`` value for files and event streams; the local user in
single-user mode), with the two things routes need: ``job(id, action)``, the job's row when the
caller may do that with it (404 for a job that is not theirs, 403 for one they may see but not
change), and ``show(row)``, the job as this caller sees it (with its files' signed links once the
server has tokens).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from ..access import (
    Action,
    Principal,
    Verdict,
    any_tokens,
    job_access,
    judge,
    local_user,
    resolve_share,
    resolve_token,
    verify_job_access,
)
from ..db import require_job_row
from ..db.models import GeneratedVideo
from ..errors import AuthenticationError, JobNotFoundError, PermissionDeniedError
from ..schemas import JobResponse
from ..storage import MEDIA_PREFIX
from .views import job_response

__all__ = ["Caller", "CallerDep", "signed"]

# auto_error=False: without a header the request may still be the local user (no tokens), or
# carry a signed ``access`` value; the scheme is declared so the OpenAPI document shows it.
_bearer = HTTPBearer(auto_error=False, description=(
    "An API token (`storyboard tokens create NAME`) or a share link's token. Not needed while "
    "the server has no tokens (single-user mode)."))

_ACCESS = Query(
    max_length=200, include_in_schema=False,
    description="A signed, expiring value for one job's files and events (from `access` in "
                "the job), for <img> tags, downloads and EventSource, which cannot send a token.")

# What a reviewer sees of a job's request (not its webhook, budget or cache settings).
_SHOWN = {"prompt", "duration", "style", "aspect_ratio", "seed", "planner", "review_plan"}

_DENIED = {
    Action.WRITE: "a share link cannot change the board",
    Action.COSTS: "a share link does not show costs",
    Action.SHARE: "only the board's owner can share it",
    Action.APPROVE: "this share link does not allow approving or requesting changes",
    Action.COMMENT: "this share link does not allow comments",
    Action.READ: "this link cannot read that",
}


def _principal(engine: Engine, credentials: HTTPAuthorizationCredentials | None,
               access: str | None) -> Principal:
    if not any_tokens(engine):
        return local_user()  # single-user mode: nobody else to keep out (loopback only)
    if credentials is not None:
        secret = credentials.credentials
        token = resolve_token(engine, secret)
        if token is not None:
            return Principal(kind="token", name=token.name, admin=token.admin)
        share = resolve_share(engine, secret)
        if share is not None:
            return Principal(kind="share", name=share.label or "reviewer", job_id=share.job_id,
                             share_id=share.id, can_comment=share.allow_comments,
                             can_approve=share.allow_approve)
        raise AuthenticationError("This token is not valid (unknown, revoked or an expired "
                                  "share link); ask the server's admin for a new one")
    if access is not None:
        signed_access = verify_job_access(engine, access)
        if signed_access is not None:
            return Principal(kind="link", name="link", job_id=signed_access.job_id,
                             owner_view=signed_access.owner_view)
        raise AuthenticationError("This link has expired; reload the board for a fresh one")
    raise AuthenticationError("This server needs a token: send 'Authorization: Bearer <token>' "
                              "(storyboard tokens create NAME makes one)")


def signed(url: str | None, access: str) -> str | None:
    """A stored file's URL with the job's signed access value (other URLs as they are)."""
    if url is None or not url.startswith(MEDIA_PREFIX):
        return url
    return f"{url}?access={access}"


class Caller:
    """The principal of one request, and the jobs it may see."""

    def __init__(self, engine: Engine, principal: Principal) -> None:
        self.engine, self.principal = engine, principal

    @property
    def owner(self) -> str | None:
        return self.principal.owner

    @property
    def lists_all(self) -> bool:
        """Whether listing jobs shows everyone's (admins, single-user mode)."""
        return self.principal.admin

    def allowed(self, row: GeneratedVideo, action: Action) -> bool:
        return judge(self.principal, action, job_id=row.id,
                     job_owner=row.owner) is Verdict.ALLOWED

    def job(self, job_id: int, action: Action = Action.READ) -> GeneratedVideo:
        """The job's row, when this caller may do ``action`` with it."""
        if self.principal.job_id not in (None, job_id):
            raise JobNotFoundError(job_id)  # a share or signed link opens its one job only
        row = require_job_row(self.engine, job_id)
        verdict = judge(self.principal, action, job_id=job_id, job_owner=row.owner)
        if verdict is Verdict.NOT_FOUND:
            raise JobNotFoundError(job_id)
        if verdict is Verdict.FORBIDDEN:
            raise PermissionDeniedError(f"Not allowed: {_DENIED[action]}")
        return row

    def show(self, row: GeneratedVideo) -> JobResponse:
        """The job as this caller sees it: with its files' signed links once tokens exist."""
        job = job_response(row)
        if self.principal.kind == "local":
            return job
        p = self.principal
        # A link shows what the one it was given to saw; a reviewer's never shows more.
        owner_view = p.kind == "token" or (p.kind == "link" and p.owner_view)
        access = job_access(self.engine, row.id, owner_view=owner_view)
        for entry in job.storyboard or []:
            entry.image_url = signed(entry.image_url, access)
            for version in entry.versions:
                version.image_url = signed(version.image_url, access)
        job.access = access
        if not owner_view:
            # A reviewer sees the board, not the account behind it.
            job.owner = None
            job.actual_cost = job.cost_upper_bound = None
            job.estimated_cost, job.cost_uncertain = 0.0, False
            if job.parameters is not None:  # the shape of the board, not where it reports
                job.parameters = {k: v for k, v in job.parameters.items() if k in _SHOWN}
        return job


def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    access: Annotated[str | None, _ACCESS] = None,
) -> Caller:
    engine: Engine = request.app.state.engine
    return Caller(engine, _principal(engine, credentials, access))


CallerDep = Annotated[Caller, Depends(_caller)]
