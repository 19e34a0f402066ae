"""Job events as outbox messages, written in the job's own transaction.

A job asks for webhooks with ``webhook_url`` and ``webhook_events`` (kept in its parameters):

* ``start``: the job started (its first move out of ``pending``);
* ``scene``: a scene finished (its image made, or failed for good);
* ``completed``: the job reached a final status (``storyboard_ready``, ``failed``, ``cancelled``).

The body is the job's ``JobResponse`` as it stands in the transaction that wrote the event, so
what a receiver gets is the state that was committed with it. ``enqueue_job_event`` runs inside
that transaction (after the job's UPDATE, on the same connection) and reads the row there;
``event_hooks`` gives the callables for a write that runs hooks after its UPDATE.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from ..db.models import GeneratedVideo, WebhookMessage
from .outbox import EVENTS, enqueue_statement, new_message_id

__all__ = [
    "DEFAULT_EVENTS",
    "EventHook",
    "enqueue_job_event",
    "event_hooks",
    "job_payload",
    "webhook_target",
]

DEFAULT_EVENTS = ("completed",)
EventHook = Callable[[Connection], str | None]


def webhook_target(parameters: Mapping[str, Any] | None, event: str) -> str | None:
    """The URL ``event`` goes to for a job with these parameters, or None when it asked for
    no webhook or not for this event."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}; one of {', '.join(EVENTS)}")
    if not parameters:
        return None
    url = parameters.get("webhook_url")
    if not isinstance(url, str) or not url:
        return None
    events = parameters.get("webhook_events")
    wanted = DEFAULT_EVENTS if events is None else events  # an explicit [] asks for none
    return url if isinstance(wanted, list | tuple) and event in wanted else None


def _parameters(row: GeneratedVideo) -> dict[str, Any]:
    try:
        params = json.loads(row.parameters or "{}")
    except ValueError:
        return {}
    return params if isinstance(params, dict) else {}


def job_payload(row: GeneratedVideo) -> str:
    """The body of a delivery: the job's ``JobResponse`` (as ``GET /api/v2/jobs/{id}``
    returns it), in JSON."""
    from ..api.views import job_response  # the API's view of a row (imported late: no cycle)

    return job_response(row).model_dump_json()


def enqueue_job_event(
    conn: Connection, *, job_id: int, event: str, now: datetime | None = None,
    once: bool = False,
) -> str | None:
    """Write ``event`` for job ``job_id`` in ``conn``'s transaction if the job asked for it;
    the body is the row as this transaction sees it (so call it after the job's UPDATE).
    ``once``: not when the job already has a message for this event (``start``: a resumed run
    that moves the job again does not send a second one). Returns the message id, or None."""
    with Session(bind=conn) as session:  # joins the caller's transaction, never commits it
        row = session.get(GeneratedVideo, job_id)
        if row is None:
            return None
        url = webhook_target(_parameters(row), event)
        if url is None:
            return None
        if once:
            seen = select(WebhookMessage.id).where(WebhookMessage.job_id == job_id,
                                                   WebhookMessage.event == event).limit(1)
            if conn.execute(seen).first() is not None:
                return None
        payload = job_payload(row)
    msg_id = new_message_id()
    conn.execute(enqueue_statement(job_id=job_id, event=event, url=url, payload=payload, now=now,
                                   msg_id=msg_id))
    return msg_id


def event_hooks(
    parameters: Mapping[str, Any] | None, *, job_id: int, event: str, once: bool = False
) -> list[EventHook]:
    """What a job write should run after its UPDATE, in its transaction, to send ``event``:
    one hook when the job (with these parameters) asked for it, else none, so a job without
    webhooks costs nothing."""
    if webhook_target(parameters, event) is None:
        return []
    return [partial(enqueue_job_event, job_id=job_id, event=event, once=once)]
