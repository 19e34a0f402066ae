"""The errors of webhooks, under the project's root ``StoryboardError``.

    WebhookError                        root of these
    ├── WebhookVerificationError        a delivery's signature headers do not check out
    ├── InvalidSecretError              the signing secret is not a whsec_<base64> secret
    │                                   (also a ConfigurationError: a setting to fix)
    └── WebhookURLError                 a URL webhooks may not be sent to (also an
        │                               InvalidRequestError on ``webhook_url``: the API's 422)
        └── AddressRefusedError         its host resolves to a private, loopback... address

No message ever holds a secret or a signature: they name what is wrong, not the values.
"""

from __future__ import annotations

from ..errors import ConfigurationError, InvalidRequestError, StoryboardError

__all__ = [
    "AddressRefusedError",
    "InvalidSecretError",
    "WebhookError",
    "WebhookURLError",
    "WebhookVerificationError",
]


class WebhookError(StoryboardError):
    """Root of the webhook errors."""


class WebhookVerificationError(WebhookError, ValueError):
    """A delivery failed verification (missing or malformed headers, a timestamp outside the
    tolerance, no matching signature): the receiver should answer 400 and drop it."""


class InvalidSecretError(WebhookError, ConfigurationError, ValueError):
    """The secret is not a Standard Webhooks secret (``whsec_`` and base64)."""


class WebhookURLError(WebhookError, InvalidRequestError):
    """A webhook URL that cannot be used; the message says what to fix."""

    def __init__(self, message: str, *, field: str = "webhook_url") -> None:
        super().__init__(field, message)


class AddressRefusedError(WebhookURLError):
    """The URL's host is (or resolves to) an address webhooks are not sent to; ``address`` is
    the first such address. Permanent: resolving again will not make it acceptable."""

    def __init__(self, message: str, *, address: str) -> None:
        super().__init__(message)
        self.address = address
