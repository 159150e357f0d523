"""The CDEvents schemas the service validates with are the shared conformance ones, unchanged (SOURCE.txt says they
are copied from there): every bundled file has its shared twin, byte for byte."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from pipeline_svc.sources import cdevents

from ..conformance import CDEVENTS

BUNDLED = Path(str(resources.files("pipeline_svc.sources") / "cdevents_schemas"))
#: bundled folder → the shared release it copies
RELEASES = {"v0_4": "v0.4.1", "v0_5": "v0.5.1"}


def bundled_schemas() -> list[Path]:
    return sorted(p.relative_to(BUNDLED) for p in BUNDLED.rglob("*.json"))


def shared_twin(relative: Path) -> Path:
    folder, *rest = relative.parts
    return CDEVENTS / RELEASES[folder] / "schemas" / Path(*rest)


def test_every_bundled_release_folder_is_a_known_release() -> None:
    folders = {p.name for p in BUNDLED.iterdir() if p.is_dir()}
    assert folders == set(RELEASES) == set(cdevents.RELEASES)
    # both the event schemas and the links they $ref are bundled
    assert all((BUNDLED / folder / "links").is_dir() for folder in folders)


@pytest.mark.parametrize("relative", bundled_schemas(), ids=str)
def test_bundled_schema_is_byte_identical_to_its_shared_twin(relative: Path) -> None:
    twin = shared_twin(relative)
    assert twin.is_file(), f"{relative} has no shared twin at {twin}"
    assert (BUNDLED / relative).read_bytes() == twin.read_bytes(), f"{relative} differs from {twin}"


def test_every_shared_schema_is_bundled() -> None:
    """The other way round: a schema added to the shared releases is not silently missing from the service."""
    for folder, release in RELEASES.items():
        root = CDEVENTS / release / "schemas"
        shared = sorted(p.relative_to(root) for p in root.rglob("*.json"))
        assert shared, root
        assert sorted(p.relative_to(BUNDLED / folder) for p in (BUNDLED / folder).rglob("*.json")) == shared


def test_the_bundled_licence_is_the_shared_one() -> None:
    assert (BUNDLED / "LICENSE").read_bytes() == (CDEVENTS / "LICENSE").read_bytes()
