"""The check a job's webhook gets when it is submitted (API and CLI)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from .addresses import check_url
from .errors import InvalidSecretError, WebhookURLError
from .signing import signing_key

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["check_webhook_request"]


def check_webhook_request(settings: Settings, *, url: str | None) -> None:
    """Refuse a webhook that could never be delivered, before the job is saved.

    * No ``STORYBOARD_WEBHOOK_SECRET``: ``WebhookURLError`` on ``webhook_url`` (the API's 422):
      this server does not send webhooks, and says which setting would make it.
    * A malformed secret: ``InvalidSecretError`` (a ``ConfigurationError``, the API's 503): the
      server's fault, not the request's.
    * A URL that is not http(s), has no host or holds credentials, or whose host is a non-public
      address (unless ``STORYBOARD_WEBHOOK_ALLOW_PRIVATE``): ``WebhookURLError``. Names are
      resolved only when sending.
    """
    if url is None:
        return
    try:
        signing_key(settings)
    except InvalidSecretError:
        raise
    except ConfigurationError:
        raise WebhookURLError(
            "webhooks are not enabled on this server: it has no STORYBOARD_WEBHOOK_SECRET to "
            "sign them with (set by its operator)") from None
    check_url(url, allow_private=settings.webhook_allow_private)
