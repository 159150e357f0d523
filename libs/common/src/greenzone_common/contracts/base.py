"""The base of every event data model, and the registry that finds a model by its CloudEvents type string.

A model declares its type string (``dev.greenzone.<aggregate>.<past-tense verb>.v<N>``), the topic it travels
on and the field that is its aggregate id (the Kafka key and ``ce_subject``). Consumers must accept fields
they do not know, so models allow extra fields. A breaking change is a new class with ``.v2``, registered
beside ``.v1``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar, cast

from pydantic import BaseModel, ConfigDict

CHANGE_TOPIC = "greenzone.change"
RELEASE_TOPIC = "greenzone.release"
PIPELINE_TOPIC = "greenzone.pipeline"
REPORT_TOPIC = "greenzone.report"
PLATFORM_TOPIC = "greenzone.platform"
CDEVENTS_TOPIC = "greenzone.cdevents"
DLQ_SUFFIX = ".dlq"


def dlq_topic(topic: str) -> str:
    return topic + DLQ_SUFFIX


class EventData(BaseModel):
    """The ``data`` of a Greenzone CloudEvent."""

    model_config = ConfigDict(extra="allow", frozen=True)

    event_type: ClassVar[str]
    topic: ClassVar[str]
    key_field: ClassVar[str]
    description: ClassVar[str] = ""

    def key(self) -> str:
        """The aggregate id: the Kafka message key and the CloudEvents ``subject``."""
        return str(getattr(self, self.key_field))


E = TypeVar("E", bound=type[EventData])


class UnknownEventType(KeyError):
    pass


class EventRegistry:
    def __init__(self) -> None:
        self._by_type: dict[str, type[EventData]] = {}

    def register(self, event_type: str, *, topic: str, key: str) -> Callable[[E], E]:
        def decorate(model: E) -> E:
            if event_type in self._by_type:
                raise ValueError(f"event type {event_type} registered twice")
            fields = cast("type[EventData]", model).model_fields  # read through the class, as pydantic wants
            if key not in fields:
                raise ValueError(f"{model.__name__}: key field {key!r} is not a field")
            model.event_type = event_type
            model.topic = topic
            model.key_field = key
            model.description = (model.__doc__ or "").strip()
            self._by_type[event_type] = model
            return model

        return decorate

    def model(self, event_type: str) -> type[EventData]:
        try:
            return self._by_type[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def knows(self, event_type: str) -> bool:
        return event_type in self._by_type

    def parse(self, event_type: str, data: Any) -> EventData:
        """Validate ``data`` (a dict or JSON bytes) against the model of ``event_type``."""
        model = self.model(event_type)
        if isinstance(data, bytes | str):
            return model.model_validate_json(data)
        return model.model_validate(data)

    def topics(self) -> set[str]:
        return {m.topic for m in self._by_type.values()}

    def __iter__(self) -> Iterator[type[EventData]]:
        return iter(sorted(self._by_type.values(), key=lambda m: m.event_type))

    def __len__(self) -> int:
        return len(self._by_type)


registry = EventRegistry()
event = registry.register
