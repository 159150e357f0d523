"""Where the shared conformance payloads live (read as they are, never copied or edited)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from greenzone_common.testing.conformance import conformance_dir

REPO = next(
    p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists() and (p / "services").is_dir()
)
CONFORMANCE = conformance_dir(REPO)
GITHUB = CONFORMANCE / "github"
GITLAB = CONFORMANCE / "gitlab"
CDEVENTS = CONFORMANCE / "cdevents"
TEKTON = CONFORMANCE / "tekton"

GITLAB_EVENT_HEADER = {
    "push": "Push Hook",
    "tag_push": "Tag Push Hook",
    "merge_request": "Merge Request Hook",
    "pipeline": "Pipeline Hook",
    "build": "Job Hook",
    "deployment": "Deployment Hook",
    "release": "Release Hook",
    "issue": "Issue Hook",
}


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def github_files(used: frozenset[str] | None = None) -> list[Path]:
    return sorted(p for p in GITHUB.glob("*/*.json") if used is None or p.parent.name in used)


def gitlab_files() -> list[Path]:
    return sorted(GITLAB.glob("*/*.json"))


def cdevents_examples() -> list[Path]:
    return sorted(CDEVENTS.glob("v0.*/examples/*.json"))
