"""Persistence: the ``generated_videos`` table, engines, migrations and job queries."""

from . import ledger
from .engine import dispose_engines, get_engine
from .jobs import (
    FINAL_STATUSES,
    IDLE_STATUSES,
    RUNNABLE_STATUSES,
    claim_job,
    claim_statement,
    claimable_job_ids,
    count_jobs,
    create_job,
    get_job_row,
    job_as_dict,
    leased_jobs,
    list_jobs,
    release_lease,
    release_statement,
    renew_lease,
    require_job_row,
    update_job,
    update_statement,
)
from .migrate import ensure_schema
from .models import GeneratedVideo
from .writer import JobWriter

__all__ = [
    "FINAL_STATUSES",
    "IDLE_STATUSES",
    "RUNNABLE_STATUSES",
    "GeneratedVideo",
    "JobWriter",
    "claim_job",
    "claim_statement",
    "claimable_job_ids",
    "count_jobs",
    "create_job",
    "dispose_engines",
    "ensure_schema",
    "get_engine",
    "get_job_row",
    "job_as_dict",
    "leased_jobs",
    "ledger",
    "list_jobs",
    "release_lease",
    "release_statement",
    "renew_lease",
    "require_job_row",
    "update_job",
    "update_statement",
]
