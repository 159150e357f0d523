"""The image recipe (no Docker engine here to build it): multi-stage, locked dependencies, non-root, no build tools
or HEALTHCHECK in the runtime stage, and the SERVICE argument maps to each service's app module."""

from __future__ import annotations

import re
from pathlib import Path

from greenzone_common.topology import SERVICES

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "deploy" / "docker" / "Dockerfile").read_text()


def stages() -> dict[str, str]:
    parts = re.split(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", DOCKERFILE, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_runtime_stage_is_minimal_and_unprivileged() -> None:
    runtime = stages()["runtime"]
    assert not re.search(r"^\s*HEALTHCHECK", DOCKERFILE, re.MULTILINE), "Kubernetes probes do it"
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE)
    assert "COPY --from=build /app/.venv /app/.venv" in runtime
    assert not re.search(r"apt-get|uv |pip install|gcc|build-essential", runtime)


def test_build_installs_the_locked_service_without_dev_dependencies() -> None:
    build = stages()["build"]
    assert 'uv sync --frozen --no-dev --no-editable --package "${SERVICE}"' in build


def test_service_argument_selects_the_app_module() -> None:
    command = re.search(r"\$\{SERVICE%-svc\}_svc\.main:create_app", DOCKERFILE)
    assert command, "CMD derives the module from SERVICE"
    for info in SERVICES.values():
        assert info.module == f"{info.name.removesuffix('-svc')}_svc.main"


def test_build_context_is_the_workspace_only() -> None:
    lines = [x for x in (REPO / ".dockerignore").read_text().splitlines() if x and not x.startswith("#")]
    assert lines[0] == "*", "everything is excluded first (.venv, .greenzone, .git)"
    assert {"!pyproject.toml", "!uv.lock", "!libs/", "!services/"} <= set(lines)
