"""The ``generated_videos`` table: one row per storyboard job."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ApiToken",
    "Base",
    "BudgetDay",
    "CachedImage",
    "Comment",
    "GeneratedVideo",
    "Prediction",
    "ServerKey",
    "ShareLink",
    "UTCDateTime",
    "WebhookMessage",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as naive UTC (SQLite has no zones) and read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class GeneratedVideo(Base):
    """A storyboard job. JSON columns are TEXT, as the spec's migration declares them."""

    __tablename__ = "generated_videos"
    __table_args__ = (Index("ix_generated_videos_owner", "owner", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prompt: Mapped[str] = mapped_column(Text, nullable=False)
    video_url: Mapped[str | None] = mapped_column(Text, default="")
    model_id: Mapped[str | None] = mapped_column(String(64))
    parameters: Mapped[str | None] = mapped_column(Text)  # JSON: duration, style, aspect_ratio..
    status: Mapped[str] = mapped_column(String(32), nullable=False, default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # The spec's columns.
    progress: Mapped[str | None] = mapped_column(Text)  # JSON VideoProgress
    storyboard_data: Mapped[str | None] = mapped_column(Text)  # JSON list of StoryboardEntry
    approved: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    estimated_cost: Mapped[float] = mapped_column(Float, default=0.0, server_default="0.0")
    # What the job was billed: the sum of its ledger's billed rows (``predictions``), written in
    # the same transaction as every ledger change.
    actual_cost: Mapped[float | None] = mapped_column(Float)
    error_message: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Execution: the worker holding the job and until when (a lapsed lease means the worker
    # died and the job may be resumed), and when it was last handed to a queue.
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The plan (JSON ``Plan``): the story bible and who planned it. Its scenes are the
    # storyboard's, so they are kept there only.
    plan: Mapped[str | None] = mapped_column(Text)
    # What it may have been billed beyond ``actual_cost``: predictions whose outcome is not
    # known (a create whose answer was lost and could not be found again, one still running).
    possible_cost: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # Whose job it is (an API token's name); none for jobs made in single-user mode, which only
    # admins see once tokens exist. Who approved it (a token's name, or a reviewer's through a
    # share link).
    owner: Mapped[str | None] = mapped_column(String(64))
    approved_by: Mapped[str | None] = mapped_column(String(200))


class Prediction(Base):
    """The prediction ledger: one row per prediction (image or plan) a job created or adopted,
    written before waiting on it; a job's ``actual_cost`` is the sum of its ``billed_cost``."""

    __tablename__ = "predictions"
    __table_args__ = (
        # One row per prediction, however many runs and workers see it.
        UniqueConstraint("provider", "prediction_id", name="uq_predictions_provider_id"),
        Index("ix_predictions_job", "job_id"),
        Index("ix_predictions_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(Integer, nullable=False)
    scene_number: Mapped[int | None] = mapped_column(Integer)  # None: the job's plan
    version: Mapped[int | None] = mapped_column(Integer)  # which image of the scene it was for
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # image | plan | earlier
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    model: Mapped[str | None] = mapped_column(String(200))
    # None: a create whose answer never came (it may exist, unseen).
    prediction_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    billed_cost: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    possible_cost: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CachedImage(Base):
    """An image request made once: identical requests (same provider, model and inputs, seed
    included) reuse its stored image. ``pending`` while one worker makes it (``claimed_by``
    until ``claimed_until``), ``done`` when stored, ``failed`` when it could not be made."""

    __tablename__ = "image_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    model: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    job_id: Mapped[int | None] = mapped_column(Integer)  # where it was made
    scene_number: Mapped[int | None] = mapped_column(Integer)
    image_url: Mapped[str | None] = mapped_column(Text)
    source_url: Mapped[str | None] = mapped_column(Text)
    prediction_id: Mapped[str | None] = mapped_column(String(128))
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookMessage(Base):
    """A webhook delivery in the durable outbox: sent (and retried with backoff for at least an
    hour) by any worker; ``id`` is the ``webhook-id`` every attempt carries."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (
        Index("ix_webhook_outbox_due", "delivered_at", "next_attempt_at"),
        Index("ix_webhook_outbox_job", "job_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[int] = mapped_column(Integer, nullable=False)
    event: Mapped[str] = mapped_column(String(16), nullable=False)  # start | scene | completed
    url: Mapped[str] = mapped_column(Text, nullable=False)
    payload: Mapped[str] = mapped_column(Text, nullable=False)  # the JobResponse, as sent
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    gave_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class BudgetDay(Base):
    """One row per UTC day the daily budget was checked on: locked while a paid creation is
    reserved, so workers on different machines cannot both take the last dollar."""

    __tablename__ = "budget_days"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    touched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """An API token: its owner's name, whether it is an admin's, and its SHA-256 (the token
    itself is shown once, never stored)."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_name", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ShareLink(Base):
    """A read-only link to one job's board for reviewers without a token (its SHA-256 kept):
    comments allowed or not, approval and change requests allowed or not; it may expire and
    can be revoked."""

    __tablename__ = "share_links"
    __table_args__ = (Index("ix_share_links_job", "job_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(Integer, nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    label: Mapped[str | None] = mapped_column(String(200))
    allow_comments: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    allow_approve: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Comment(Base):
    """A note on a board (``scene_number`` none) or one of its frames: a comment, or a request
    for changes; who wrote it and through what (a token's name, a share link)."""

    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_job", "job_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(Integer, nullable=False)
    scene_number: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default="comment")
    author: Mapped[str] = mapped_column(String(100), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    via: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class ServerKey(Base):
    """Secrets the servers of one database share (the key that signs media links), made on
    first use."""

    __tablename__ = "server_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
