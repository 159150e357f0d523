"""Standard CDEvents (v0.5.x) that Greenzone emits on ``greenzone.cdevents`` for tools that only speak CDEvents.

A CDEvent travels as a CloudEvent whose ``type`` is the CDEvent's ``context.type`` and whose data is the whole
CDEvent (context + subject), as the CDEvents CloudEvents binding says. Builders here produce that JSON; services
stage it with :meth:`greenzone_common.outbox.Outbox.add_cloudevent`, in the same transaction as the fact it reports.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

SPEC_VERSION = "0.5.1"

#: The subject type versions of CDEvents v0.5.1 that Greenzone emits.
TYPE_VERSIONS: dict[str, str] = {
    "service.deployed": "0.3.0",
    "service.upgraded": "0.3.0",
    "service.rolledback": "0.3.0",
    "ticket.created": "0.2.0",
    "ticket.updated": "0.2.0",
    "ticket.closed": "0.2.0",
    "incident.detected": "0.3.0",
    "incident.resolved": "0.3.0",
}

#: v0.5.1 subjects carry no ``type`` (their schemas forbid extra properties), except ``ticket.closed``'s.
SUBJECT_TYPE_ALLOWED = frozenset({"ticket.closed"})


def type_string(name: str) -> str:
    """``service.deployed`` → ``dev.cdevents.service.deployed.0.3.0``."""
    return f"dev.cdevents.{name}.{TYPE_VERSIONS[name]}"


def _time(at: datetime | None) -> str:
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")


def build(
    name: str,
    *,
    source: str,
    subject_id: str,
    content: dict[str, Any],
    subject_source: str | None = None,
    at: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A CDEvent of type ``name`` (e.g. ``ticket.created``); ``content`` is the subject's content."""
    subject: dict[str, Any] = {"id": subject_id, "source": subject_source or source}
    if name in SUBJECT_TYPE_ALLOWED:
        subject["type"] = name.split(".")[0]
    subject["content"] = {k: v for k, v in content.items() if v is not None}
    return {
        "context": {
            "specversion": SPEC_VERSION,
            "id": event_id or str(uuid.uuid4()),
            "source": source,
            "type": type_string(name),
            "timestamp": _time(at),
        },
        "subject": subject,
    }
