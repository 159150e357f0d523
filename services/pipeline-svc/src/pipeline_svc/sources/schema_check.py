"""A fast yes for JSON Schema: a schema compiled into plain Python predicates that answer "valid" exactly when
``jsonschema`` (draft 2020-12, formats not asserted) would find no error, for the keywords the vendored CDEvents
schemas use. ``jsonschema`` walks a schema with a new validator object per level (about 250 calls per CDEvent); a
predicate is a few dict look-ups. It only ever says yes or no: callers run ``jsonschema`` itself when it says no, to
name the failing field exactly as before.

A schema using anything else (a keyword not listed below, a non-string ``enum``, a ``$ref`` with a fragment, a
nested ``$id``, a reference cycle) is not compiled at all (:class:`Unsupported`): such a type is always checked by
``jsonschema``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urljoin

Check = Callable[[Any], bool]

#: keywords that never make an instance invalid (annotations; ``format`` is not asserted by the validators used)
ANNOTATIONS = frozenset(
    {
        "$schema",
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "example",
        "format",
        "contentEncoding",
        "contentMediaType",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
ASSERTIONS = frozenset(
    {"type", "enum", "minLength", "properties", "required", "additionalProperties", "$ref", "oneOf", "anyOf", "items"}
)
#: JSON type → the Python type ``jsonschema``'s draft 2020-12 type checker accepts for it
TYPES: dict[str, type] = {"string": str, "object": dict, "array": list}


class Unsupported(ValueError):
    """The schema uses something this compiler does not reproduce exactly."""


def _always(_: Any) -> bool:
    return True


def _never(_: Any) -> bool:
    return False


class Compiler:
    """Compiles schemas that may ``$ref`` each other by their ``$id`` (``documents``: ``$id`` → schema)."""

    def __init__(self, documents: Mapping[str, Any]) -> None:
        self.documents = documents
        self._compiled: dict[str, Check] = {}
        self._compiling: set[str] = set()

    def document(self, uri: str) -> Check:
        if uri in self._compiled:
            return self._compiled[uri]
        if uri in self._compiling or uri not in self.documents:
            raise Unsupported(f"$ref {uri!r}: a cycle or an unknown document")
        self._compiling.add(uri)
        try:
            check = self.schema(self.documents[uri], uri, root=True)
        finally:
            self._compiling.discard(uri)
        self._compiled[uri] = check
        return check

    def schema(self, schema: Any, base: str, *, root: bool = False) -> Check:
        if schema is True:
            return _always
        if schema is False:
            return _never
        if not isinstance(schema, dict):
            raise Unsupported("a schema must be an object or a boolean")
        for keyword in schema:
            if keyword == "$id":
                if not root:
                    raise Unsupported("a nested $id")
            elif keyword not in ASSERTIONS and keyword not in ANNOTATIONS:
                raise Unsupported(f"keyword {keyword!r}")
        checks: list[Check] = []
        if "type" in schema:
            checks.append(self._type(schema["type"]))
        if "enum" in schema:
            checks.append(self._enum(schema["enum"]))
        if "minLength" in schema:
            checks.append(self._min_length(schema["minLength"]))
        if any(k in schema for k in ("properties", "required", "additionalProperties")):
            checks.append(self._object(schema, base))
        if "items" in schema:
            checks.append(self._items(schema["items"], base))
        if "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str) or "#" in ref:
                raise Unsupported(f"$ref {ref!r}")
            checks.append(self._deferred(urljoin(base, ref)))
        if "oneOf" in schema:
            checks.append(self._one_of([self.schema(s, base) for s in self._list(schema["oneOf"])]))
        if "anyOf" in schema:
            checks.append(self._any_of([self.schema(s, base) for s in self._list(schema["anyOf"])]))
        if not checks:
            return _always
        if len(checks) == 1:
            return checks[0]
        if len(checks) == 2:
            first, second = checks
            return lambda x: first(x) and second(x)
        return lambda x: all(c(x) for c in checks)

    @staticmethod
    def _list(value: Any) -> list[Any]:
        if not isinstance(value, list) or not value:
            raise Unsupported("oneOf/anyOf must be a non-empty array")
        return value

    def _deferred(self, uri: str) -> Check:
        if uri not in self.documents:
            raise Unsupported(f"$ref to an unknown document {uri!r}")
        return self.document(uri)

    @staticmethod
    def _type(value: Any) -> Check:
        if not isinstance(value, str) or value not in TYPES:
            raise Unsupported(f"type {value!r}")
        kind = TYPES[value]
        return lambda x: isinstance(x, kind)

    @staticmethod
    def _enum(values: Any) -> Check:
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise Unsupported("an enum of anything but strings")
        allowed = frozenset(values)
        return lambda x: isinstance(x, str) and x in allowed

    @staticmethod
    def _min_length(value: Any) -> Check:
        if not isinstance(value, int) or isinstance(value, bool):
            raise Unsupported("minLength must be an integer")
        return lambda x: not isinstance(x, str) or len(x) >= value

    def _object(self, schema: dict[str, Any], base: str) -> Check:
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        additional = schema.get("additionalProperties", True)
        if not isinstance(properties, dict) or not isinstance(required, list):
            raise Unsupported("properties/required")
        if not all(isinstance(r, str) for r in required):
            raise Unsupported("required names must be strings")
        checks: dict[str, Check | None] = {}
        for name, sub in properties.items():
            check = self.schema(sub, base)
            checks[name] = None if check is _always else check
        extra: Check | None
        if additional is True:
            extra = _always
        elif additional is False:
            extra = None
        else:
            extra = self.schema(additional, base)
        needed = tuple(required)
        missing = object()

        def check(x: Any) -> bool:
            if not isinstance(x, dict):
                return True
            for name in needed:
                if name not in x:
                    return False
            for name, value in x.items():
                c = checks.get(name, missing)
                if c is missing:
                    if extra is None or not extra(value):
                        return False
                elif c is not None and not c(value):  # type: ignore[operator]
                    return False
            return True

        return check

    def _items(self, items: Any, base: str) -> Check:
        if not isinstance(items, dict | bool):
            raise Unsupported("items must be a schema (2020-12)")
        each = self.schema(items, base)
        return lambda x: not isinstance(x, list) or all(each(v) for v in x)

    @staticmethod
    def _one_of(options: list[Check]) -> Check:
        def check(x: Any) -> bool:
            matched = 0
            for option in options:
                if option(x):
                    matched += 1
                    if matched > 1:
                        return False
            return matched == 1

        return check

    @staticmethod
    def _any_of(options: list[Check]) -> Check:
        return lambda x: any(option(x) for option in options)
