"""docs/asyncapi.yaml and docs/schemas/ are what ``make contracts`` writes from the registry today."""

from __future__ import annotations

from pathlib import Path

from greenzone_common.contracts.export import write_contracts

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_committed_contract_documents_match_the_registry(tmp_path: Path) -> None:
    written = write_contracts(tmp_path)
    assert written
    for path in written:
        committed = DOCS / path.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is missing: run `make contracts`"
        assert committed.read_bytes() == path.read_bytes(), f"{committed} is stale: run `make contracts`"
    stale = {p.name for p in (DOCS / "schemas").glob("*.json")} - {p.name for p in written}
    assert not stale, f"schemas of unregistered types: {sorted(stale)}"
