"""One validated settings object, read from the environment when asked for (never at import).

Storyboard's own settings use the ``STORYBOARD_`` prefix; the few names other tools already use
(``DATA``, ``DATABASE_URL``, ``REPLICATE_API_KEY``/``REPLICATE_API_TOKEN``, ``REPLICATE_BASE_URL``)
are read as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """Everything configurable, with the spec's numbers as defaults."""

    # No inf or nan: "STORYBOARD_LEASE_SECONDS=inf" would pass and overflow a date later.
    model_config = SettingsConfigDict(
        env_prefix="STORYBOARD_", extra="ignore", populate_by_name=True, allow_inf_nan=False
    )

    data_dir: Path = Field(
        default=Path("DATA"), validation_alias=AliasChoices("DATA", "STORYBOARD_DATA_DIR")
    )
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "STORYBOARD_DATABASE_URL")
    )

    # Retries: attempts per scene, first backoff (doubles each time: 2 s, 4 s, 8 s ...).
    max_retries: int = Field(default=3, ge=1, le=10)
    retry_base_delay: float = Field(default=2.0, ge=0)
    retry_max_delay: float = Field(default=60.0, ge=0)
    # Whole-prediction limit per image attempt, in seconds.
    image_timeout: float = Field(default=120.0, gt=0)
    parsing_timeout: float = Field(default=30.0, gt=0)

    # Image provider: "auto" picks Replicate when a key is set, else the offline sketch renderer.
    image_provider: Literal["auto", "sketch", "replicate", "cog"] = "auto"
    image_model: str = "black-forest-labs/flux-schnell"
    image_price: float = Field(default=0.003, ge=0)  # USD per produced image (Flux-Schnell)
    output_format: Literal["webp", "jpg", "png"] = "webp"
    replicate_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "REPLICATE_API_KEY", "REPLICATE_API_TOKEN", "STORYBOARD_REPLICATE_API_KEY"
        ),
    )
    replicate_base_url: str = Field(
        default="https://api.replicate.com/v1",
        validation_alias=AliasChoices("REPLICATE_BASE_URL", "STORYBOARD_REPLICATE_BASE_URL"),
    )
    replicate_poll_interval: float = Field(default=0.5, gt=0)
    replicate_wait: int = Field(default=60, ge=1, le=60)  # seconds for `Prefer: wait`
    cog_url: str | None = None
    # Seconds the sketch renderer waits per frame: makes progress visible in demos and tests.
    sketch_delay: float = Field(default=0.0, ge=0, le=60)

    # A running job holds a lease on its row, renewed while it runs; a lease that lapses means
    # its worker died, and any worker may resume the job.
    lease_seconds: float = Field(default=30.0, gt=0)
    # Worker: jobs run at once per process, how often it looks for new work, how long SIGTERM
    # waits for running jobs before handing them back.
    worker_max_jobs: int = Field(default=200, ge=1)
    worker_poll_interval: float = Field(default=0.5, gt=0)
    shutdown_grace: float = Field(default=20.0, ge=0)
    # Scale-out: a Dramatiq broker (amqp://... RabbitMQ, recommended; or redis://...) makes
    # `storyboard worker` consume jobs from a queue instead of polling the database.
    broker_url: str | None = None
    queue_name: str = "storyboard"
    # A Redis URL for the fleet-wide image rate limit (defaults to the broker when it is Redis).
    redis_url: str | None = None
    # Dramatiq: a job message is retried only when its job is held by another worker (e.g. a
    # redelivery racing a dead worker's lease) or the database could not be read; the job
    # itself handles image failures.
    queue_max_retries: int = Field(default=10, ge=0)
    # Below RabbitMQ's 30-minute consumer timeout, so a stuck job is interrupted (and resumed
    # from its checkpoint) before the broker drops the worker's channel.
    job_time_limit: float = Field(default=25 * 60, gt=0)
    # Pending jobs not dispatched (or dispatched this long ago without being taken) and jobs
    # whose lease lapsed are sent again: no job is lost between the database and the broker.
    redispatch_after: float = Field(default=60.0, gt=0)
    redispatch_interval: float = Field(default=10.0, gt=0)
    # Image creations allowed per window across the whole fleet (Replicate: 600 per minute).
    image_rate_limit: int = Field(default=600, ge=0)
    image_rate_window: int = Field(default=60, ge=1)

    # Planning: who plans the shots. "auto": an OpenAI-compatible server when a base URL or an
    # OpenAI key is set, else a language model on Replicate when images come from Replicate,
    # else the rules.
    planner: Literal["auto", "rules", "openai", "replicate"] = "auto"
    llm_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("STORYBOARD_LLM_BASE_URL", "OPENAI_BASE_URL"))
    llm_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("STORYBOARD_LLM_API_KEY", "OPENAI_API_KEY"))
    # None: the planner's default (gpt-4o-mini; openai/gpt-4o-mini on Replicate).
    llm_model: str | None = None
    # USD per million tokens; None: the default model's price (another model's counts as free,
    # with a warning, until these are set).
    llm_input_price: float | None = Field(default=None, ge=0)
    llm_output_price: float | None = Field(default=None, ge=0)
    # Output tokens one answer may use: a 10-scene plan with its bible takes about 2,500.
    llm_max_tokens: int = Field(default=6000, ge=256, le=65536)

    # Cost control: reuse identical image requests' images; a cap per job (a request's
    # max_cost overrides it) and a daily budget for the whole fleet (None: no limit).
    image_cache: Literal["on", "off"] = "on"
    max_job_cost: float = Field(default=1.0, gt=0)
    daily_budget: float | None = Field(default=None, gt=0)

    # Many users on one server (once API tokens exist): each token's jobs running at once, and
    # its submissions in any minute (0: no limit). Shared by the fleet through Redis when it
    # is configured.
    max_running_per_owner: int = Field(default=10, ge=0)
    submissions_per_minute: int = Field(default=30, ge=0)

    # Webhooks: the secret deliveries are signed with (Standard Webhooks' whsec_<base64>),
    # whether private addresses may receive them (tests), how often the outbox is looked at.
    webhook_secret: SecretStr | None = None
    webhook_allow_private: bool = False
    webhook_poll_interval: float = Field(default=1.0, gt=0)
    webhook_timeout: float = Field(default=10.0, gt=0)

    # How often a running job looks for a cancel (or a lost lease) in the database.
    status_poll_interval: float = Field(default=1.0, gt=0)

    # How often the event stream (SSE) looks for progress to send.
    events_interval: float = Field(default=0.25, gt=0)

    # Concurrency: scenes in flight per job (0 = all scenes) and image requests per process.
    scene_concurrency: int = Field(default=0, ge=0)
    max_inflight_images: int = Field(default=256, ge=1)

    # The HTTP surface: the largest request body taken (a larger one is refused with 413), and
    # the exact origins (comma-separated in STORYBOARD_CORS_ORIGINS) whose pages may call the
    # API from a browser; none: CORS stays off.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _cors_origins(cls, value: object) -> object:
        """"https://a.example, http://localhost:5173" as exact origins, each checked now: a
        browser sends ``scheme://host[:port]`` and nothing else, so a path, a wildcard or a
        missing scheme would never match (or match too much)."""
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple):
            return value
        origins = []
        for raw in value:
            text = str(raw).strip()
            parts = urlsplit(text)
            try:
                port = parts.port
            except ValueError:
                port = -1
            if "*" in text:
                problem = "wildcards are not allowed, list each origin"
            elif parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                problem = "it needs http:// or https:// and a host"
            elif parts.path or parts.query or parts.fragment or "@" in parts.netloc:
                problem = "an origin has no path (not even a trailing /), query or user"
            elif port == -1:
                problem = "the port is not a number from 0 to 65535"
            else:
                scheme, host = parts.scheme.lower(), parts.hostname
                host = f"[{host}]" if ":" in host else host
                default = {"http": 80, "https": 443}[scheme]
                origins.append(f"{scheme}://{host}" + (f":{port}" if port not in (None, default)
                                                       else ""))
                continue
            raise ValueError(
                f"STORYBOARD_CORS_ORIGINS: {text!r} is not an origin: {problem} (write "
                "scheme://host[:port], comma-separated, e.g. https://studio.example.com)")
        return tuple(origins)

    @property
    def resolved_database_url(self) -> str:
        """The database to use: ``DATABASE_URL`` or a SQLite file under ``DATA``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'storyboard.db').resolve()}"

    @property
    def shared_redis_url(self) -> str | None:
        """Redis for fleet-wide state: ``STORYBOARD_REDIS_URL``, else a Redis broker."""
        if self.redis_url:
            return self.redis_url
        if self.broker_url and self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return None

    @property
    def media_dir(self) -> Path:
        """Where images and exports are kept."""
        return (self.data_dir / "media").resolve()


def get_settings(**overrides: object) -> Settings:
    """Read the settings now (environment, then defaults); keyword overrides win."""
    return Settings(**overrides)  # type: ignore[arg-type]
