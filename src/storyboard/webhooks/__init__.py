"""Webhooks: signed POSTs of a job's ``JobResponse`` on the events it asked for.

    signing.py      Standard Webhooks signatures: sign, signature_headers, verify, secrets
    addresses.py    which URLs and addresses webhooks may go to (check_url, checked_addresses)
    transport.py    the delivery client: checks the address as it connects, and connects there
    outbox.py       the durable outbox: enqueue, claim, deliver_due, the retry policy
    events.py       job events (start, scene, completed) written in the job's transaction
    deliverer.py    the loop that empties the outbox (WebhookDeliverer, DelivererThread)
    submission.py   the check a webhook gets when its job is submitted
    errors.py       WebhookError and its kinds
"""

from .addresses import check_address, check_url, checked_addresses, refused_reason, shown_url
from .deliverer import DelivererThread, WebhookDeliverer, wake_deliverers
from .errors import (
    AddressRefusedError,
    InvalidSecretError,
    WebhookError,
    WebhookURLError,
    WebhookVerificationError,
)
from .events import DEFAULT_EVENTS, enqueue_job_event, event_hooks, job_payload, webhook_target
from .outbox import (
    DEFAULT_POLICY,
    EVENTS,
    Message,
    RetryPolicy,
    claim_due,
    claim_lease,
    deliver_due,
    enqueue,
    enqueue_statement,
    new_message_id,
    pending_count,
)
from .signing import new_secret, parse_secret, sign, signature_headers, signing_key, verify
from .submission import check_webhook_request
from .transport import GuardedBackend, webhook_client

__all__ = [
    "DEFAULT_EVENTS",
    "DEFAULT_POLICY",
    "EVENTS",
    "AddressRefusedError",
    "DelivererThread",
    "GuardedBackend",
    "InvalidSecretError",
    "Message",
    "RetryPolicy",
    "WebhookDeliverer",
    "WebhookError",
    "WebhookURLError",
    "WebhookVerificationError",
    "check_address",
    "check_url",
    "check_webhook_request",
    "checked_addresses",
    "claim_due",
    "claim_lease",
    "deliver_due",
    "enqueue",
    "enqueue_job_event",
    "enqueue_statement",
    "event_hooks",
    "job_payload",
    "new_message_id",
    "new_secret",
    "parse_secret",
    "pending_count",
    "refused_reason",
    "shown_url",
    "sign",
    "signature_headers",
    "signing_key",
    "verify",
    "wake_deliverers",
    "webhook_client",
    "webhook_target",
]
