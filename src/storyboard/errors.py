"""Every error Storyboard raises on purpose, under one root.

    StoryboardError                     root: catch this to catch ours
    ├── InvalidRequestError             bad input at an edge (CLI, API); names the field
    ├── JobNotFoundError                no job with that id
    ├── JobStateError                   the job is not in a state that allows this (API: 409)
    │   └── JobBusyError                another live worker holds the job's lease
    ├── ConfigurationError              a setting is missing or wrong (says which and how to fix)
    ├── AuthenticationError             no token, or one that is unknown or revoked (API: 401)
    ├── PermissionDeniedError           seen, but not to be done by this principal (API: 403)
    ├── TooManyRequestsError            try again in ``retry_after`` seconds (API: 429)
    │   └── DailyBudgetError            the fleet's daily budget is spent
    ├── PlanningError                   a language model gave no usable plan (the job then
    │   │                               plans with the rules and says why)
    │   └── RetryablePlanningError      worth another try (timeouts, 5xx, 429)
    └── ImageGenerationError            one image could not be made
        ├── RetryableImageError         worth another attempt (timeouts, 5xx, 429, flaky runs)
        └── PermanentImageError         retrying cannot help (invalid input, NSFW)
            └── AccountError            would fail every scene (key rejected, billing, no model):
                                        the job fails once instead of burning attempts per scene

Lower-level errors (httpx, SQLAlchemy, Pillow) are translated into these once, where they occur,
with ``raise ... from exc``; the CLI turns them into a message and an exit code, the API into an
HTTP status in one handler.
"""

from __future__ import annotations

__all__ = [
    "AccountError",
    "AuthenticationError",
    "ConfigurationError",
    "DailyBudgetError",
    "ImageGenerationError",
    "InvalidRequestError",
    "JobBusyError",
    "JobNotFoundError",
    "JobStateError",
    "PermanentImageError",
    "PermissionDeniedError",
    "PlanningError",
    "RetryableImageError",
    "RetryablePlanningError",
    "StoryboardError",
    "TooManyRequestsError",
]


class StoryboardError(Exception):
    """Root of every error Storyboard raises on purpose."""


class InvalidRequestError(StoryboardError, ValueError):
    """Input that breaks a documented limit; ``field`` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class JobNotFoundError(StoryboardError, LookupError):
    """No job with the given id."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"Job {job_id} not found")
        self.job_id = job_id


class JobStateError(StoryboardError):
    """The job's status does not allow the requested action."""


class JobBusyError(JobStateError):
    """Another worker holds the job's lease; try again once it may have lapsed."""


class ConfigurationError(StoryboardError):
    """A setting is missing or invalid; the message says how to fix it."""


class AuthenticationError(StoryboardError):
    """The request carries no usable credentials (a token, a share link, a signed link)."""


class PermissionDeniedError(StoryboardError):
    """The principal may see the job but not do this with it (a share link asked to redraw)."""


class TooManyRequestsError(StoryboardError):
    """A limit is reached; ``retry_after`` is the seconds until trying again can succeed."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DailyBudgetError(TooManyRequestsError):
    """Paid work would pass today's budget; ``retry_after`` is the seconds until it resets."""


class PlanningError(StoryboardError):
    """A language model gave no usable plan. ``input_tokens``/``output_tokens`` count what the
    failed turns used (they are billed all the same)."""

    def __init__(self, message: str, *, input_tokens: int = 0, output_tokens: int = 0) -> None:
        super().__init__(message)
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens


class RetryablePlanningError(PlanningError):
    """A transient failure of the language model's server; ``retry_after`` is its own hint."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ImageGenerationError(StoryboardError):
    """One image could not be produced."""


class RetryableImageError(ImageGenerationError):
    """A transient failure; ``retry_after`` is the provider's own hint in seconds, if it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentImageError(ImageGenerationError):
    """Retrying the same request cannot succeed (invalid input, content policy)."""


class AccountError(PermanentImageError):
    """The provider refuses every request (bad key, billing, unknown model)."""
