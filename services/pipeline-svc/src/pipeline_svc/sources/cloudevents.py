"""CloudEvents 1.0 over HTTP, the three content modes: binary (``ce-*`` headers, the body is the data), structured
(``application/cloudevents+json``) and batch (``application/cloudevents-batch+json``, a JSON array of structured
events). Pure: headers and body in, :class:`IncomingEvent` list out, or :class:`BadCloudEvent` naming what is wrong.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic_core import from_json

from pipeline_svc.facts.policy import parse_time

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
SPEC_VERSION = "1.0"
REQUIRED = ("id", "source", "type")


class BadCloudEvent(ValueError):
    """A request that is not acceptable CloudEvents; ``status`` is 400 or 415."""

    def __init__(self, status: int, detail: str, *, slug: str, loc: list[Any] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug
        self.loc = loc or ["body"]


@dataclass(slots=True)
class IncomingEvent:
    id: str
    source: str
    type: str
    data: Any
    subject: str | None = None
    time: datetime | None = None
    attributes: dict[str, Any] = field(default_factory=dict)  # every context attribute, as received
    loc: tuple[Any, ...] = ("body",)  # where it was in the request, for error messages


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_media(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def _json(body: bytes) -> Any:
    try:
        return from_json(body)  # pydantic-core: the values json.loads gives, a quarter faster on a batch
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCloudEvent(400, f"The request body is not valid JSON: {exc}", slug="invalid-json") from exc


def _check_attributes(attrs: Mapping[str, Any], loc: list[Any]) -> None:
    version = attrs.get("specversion")
    if version is None:
        raise BadCloudEvent(400, "specversion is required", slug="invalid-cloudevent", loc=[*loc, "specversion"])
    if version != SPEC_VERSION:
        raise BadCloudEvent(
            400,
            f"CloudEvents specversion {version!r} is not supported (only {SPEC_VERSION})",
            slug="unsupported-specversion",
            loc=[*loc, "specversion"],
        )
    for name in REQUIRED:
        value = attrs.get(name)
        if not isinstance(value, str) or not value:
            raise BadCloudEvent(
                400, f"CloudEvents attribute {name} is required", slug="invalid-cloudevent", loc=[*loc, name]
            )


def _structured(obj: Any, loc: list[Any]) -> IncomingEvent:
    if not isinstance(obj, dict):
        raise BadCloudEvent(400, "A structured CloudEvent must be a JSON object", slug="invalid-cloudevent", loc=loc)
    _check_attributes(obj, loc)
    if "data_base64" in obj:
        try:
            raw = base64.b64decode(str(obj["data_base64"]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadCloudEvent(
                400, "data_base64 is not valid base64", slug="invalid-cloudevent", loc=[*loc, "data_base64"]
            ) from exc
        data = _json(raw)
    else:
        data = obj.get("data")
        content_type = media_type(obj.get("datacontenttype")) or "application/json"
        if isinstance(data, str) and is_json_media(content_type):
            data = _json(data.encode())
    attributes = {k: v for k, v in obj.items() if k not in ("data", "data_base64")}
    return IncomingEvent(
        id=obj["id"],
        source=obj["source"],
        type=obj["type"],
        data=data,
        subject=obj.get("subject") if isinstance(obj.get("subject"), str) else None,
        time=parse_time(obj.get("time")),
        attributes=attributes,
        loc=tuple(loc),
    )


def parse_request(headers: Mapping[str, str], body: bytes, *, max_batch: int) -> list[IncomingEvent]:
    """The events of one ``POST /events`` request. ``headers`` keys are lower case."""
    media = media_type(headers.get("content-type"))
    if media == BATCH:
        items = _json(body)
        if not isinstance(items, list):
            raise BadCloudEvent(400, "A CloudEvents batch must be a JSON array", slug="invalid-cloudevent")
        if not items:
            raise BadCloudEvent(400, "The batch holds no event", slug="invalid-cloudevent")
        if len(items) > max_batch:
            raise BadCloudEvent(
                400, f"A batch holds at most {max_batch} events ({len(items)} sent)", slug="batch-too-large"
            )
        return [_structured(item, ["body", i]) for i, item in enumerate(items)]
    if media == STRUCTURED:
        return [_structured(_json(body), ["body"])]
    if "ce-specversion" in headers or "ce-id" in headers or "ce-type" in headers:
        if media and not is_json_media(media):
            raise BadCloudEvent(
                415, f"Event data must be JSON (content type {media!r} is not)", slug="unsupported-media-type"
            )
        attrs: dict[str, Any] = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
        _check_attributes(attrs, ["header"])
        if media:
            attrs["datacontenttype"] = media
        return [
            IncomingEvent(
                id=attrs["id"],
                source=attrs["source"],
                type=attrs["type"],
                data=_json(body),
                subject=attrs.get("subject"),
                time=parse_time(attrs.get("time")),
                attributes=attrs,
                loc=("body",),
            )
        ]
    if is_json_media(media):
        raise BadCloudEvent(
            400,
            "Not a CloudEvent: binary mode needs ce-specversion, ce-id, ce-source and ce-type headers; "
            f"or send {STRUCTURED} / {BATCH}",
            slug="invalid-cloudevent",
            loc=["header", "ce-specversion"],
        )
    raise BadCloudEvent(
        415,
        f"Content type {media or '(none)'!r} is not accepted: send CloudEvents as {STRUCTURED}, {BATCH}, "
        "or binary mode with a JSON body",
        slug="unsupported-media-type",
    )
