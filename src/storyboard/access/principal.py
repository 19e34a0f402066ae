"""The principal a request acts as, and what it may do with a job. Pure: no I/O.

Kinds of principal:

- ``local``: single-user mode (no token exists); an admin.
- ``token``: an API token's owner (``name``); ``admin`` sees and acts on every job.
- ``share``: a share link's reviewer: one job, read; comments and approval if the link allows.
- ``link``: a signed, expiring link to one job's files and events: read only.

Another owner's job is "not found", never "forbidden": a job id tells a stranger nothing. A
principal that may see a job but not do this with it is "forbidden" (a share link asked to
redraw, say).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Action", "Principal", "Verdict", "judge", "local_user"]


class Action(StrEnum):
    READ = "read"  # the board, its plan, events, exports, media, comments
    COSTS = "costs"  # the job's prediction ledger
    WRITE = "write"  # regenerate, re-render, render, plan edits, cancel
    APPROVE = "approve"  # approve, request changes
    COMMENT = "comment"
    SHARE = "share"  # make, list and revoke share links


class Verdict(StrEnum):
    ALLOWED = "allowed"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"


@dataclass(frozen=True)
class Principal:
    kind: str  # local | token | share | link
    name: str  # a token's owner, "local", a share link's label, or "link"
    admin: bool = False
    job_id: int | None = None  # share and link: the one job they open
    share_id: int | None = None
    can_comment: bool = False
    can_approve: bool = False
    owner_view: bool = False  # link: shows the job as its owner sees it (costs and all)

    @property
    def owner(self) -> str | None:
        """Whose jobs this principal makes and lists (None: single-user mode, no owners)."""
        return self.name if self.kind == "token" else None

    @property
    def sees_all(self) -> bool:
        return self.admin


def local_user() -> Principal:
    return Principal(kind="local", name="local", admin=True)


def judge(principal: Principal, action: Action, *, job_id: int,
          job_owner: str | None) -> Verdict:
    """May ``principal`` do ``action`` with job ``job_id`` (owned by ``job_owner``)?"""
    if principal.kind in ("share", "link"):
        if principal.job_id != job_id:
            return Verdict.NOT_FOUND
        allowed = {
            "share": {Action.READ} | ({Action.COMMENT} if principal.can_comment else set())
            | ({Action.APPROVE} if principal.can_approve else set()),
            "link": {Action.READ},
        }[principal.kind]
        return Verdict.ALLOWED if action in allowed else Verdict.FORBIDDEN
    if principal.admin:
        return Verdict.ALLOWED
    if principal.kind == "token" and job_owner is not None and job_owner == principal.name:
        return Verdict.ALLOWED
    return Verdict.NOT_FOUND
