"""The compiled CDEvents schema predicates answer exactly as the jsonschema validators do: on every conformance
example, against every schema, and on many variants of each example (fields removed, retyped, emptied, added)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline_svc.sources import cdevents, schema_check

from ..conformance import cdevents_examples, load

VALUES: list[Any] = [None, True, 1.5, "", "x", [], [{}], {}, {"linkType": "END"}]


def variants(doc: Any) -> Iterator[Any]:
    """``doc`` itself, then one change at a time at every place in it."""
    yield doc
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*path, i))

    walk(doc, ())
    for path in paths:
        parent_path, key = path[:-1], path[-1] if path else None
        for value in VALUES:
            if not path:
                yield value
                continue
            changed = copy.deepcopy(doc)
            target = changed
            for p in parent_path:
                target = target[p]
            target[key] = value
            yield changed
        if path and isinstance(key, str):
            changed = copy.deepcopy(doc)
            target = changed
            for p in parent_path:
                target = target[p]
            del target[key]
            yield changed
        node = doc
        for p in path:
            node = node[p]
        if isinstance(node, dict):
            changed = copy.deepcopy(doc)
            target = changed
            for p in path:
                target = target[p]
            target["unexpected"] = "x"
            yield changed


def test_every_vendored_schema_compiles() -> None:
    compiled = cdevents.schemas()
    assert set(compiled.fast) == set(compiled.validators)


@pytest.mark.parametrize("path", cdevents_examples(), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_predicates_agree_with_the_validators(path) -> None:  # type: ignore[no-untyped-def]
    compiled = cdevents.schemas()
    example = load(path)
    own = example["context"]["type"]
    for doc in variants(example):
        validator = compiled.validators[own]
        assert compiled.fast[own](doc) is validator.is_valid(doc), doc
    for type_name, validator in compiled.validators.items():  # the example against every other schema too
        assert compiled.fast[type_name](example) is validator.is_valid(example), type_name


def test_validate_still_names_the_failing_field() -> None:
    event = load(cdevents_examples()[0])
    del event["context"]["id"]
    with pytest.raises(cdevents.InvalidCDEvent) as failure:
        cdevents.validate(event)
    assert failure.value.field == "context.id"


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer"},
        {"pattern": "^a"},
        {"enum": [1, 2]},
        {"$ref": "#/$defs/x"},
        {"properties": {"a": {"$id": "nested"}}},
        {"$ref": "missing"},
        {"type": ["string", "null"]},
    ],
)
def test_what_it_cannot_reproduce_is_not_compiled(schema: dict[str, Any]) -> None:
    with pytest.raises(schema_check.Unsupported):
        schema_check.Compiler({"https://x/s": schema}).document("https://x/s")


def test_a_reference_cycle_is_not_compiled() -> None:
    docs = {"https://x/a": {"$ref": "b"}, "https://x/b": {"$ref": "a"}}
    with pytest.raises(schema_check.Unsupported):
        schema_check.Compiler(docs).document("https://x/a")
