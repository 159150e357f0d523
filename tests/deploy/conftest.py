"""Fixtures for the deploy/k8s checks: both overlays rendered once, and the services as their code defines them."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from greenzone_common.topology import SERVICES

# tests/ is not a package (pytest runs with --import-mode=importlib): the test modules import the renderer by name.
sys.path.insert(0, str(Path(__file__).parent))

from k8s_render import Rendered, render

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
_rendered: dict[str, Rendered] = {}


def rendered_overlay(overlay: str) -> Rendered:
    if overlay not in _rendered:
        _rendered[overlay] = Rendered(overlay, render(K8S / "overlays" / overlay))
    return _rendered[overlay]


@pytest.fixture(params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return rendered_overlay(request.param)


@pytest.fixture
def dev() -> Rendered:
    return rendered_overlay("dev")


@pytest.fixture
def prod() -> Rendered:
    return rendered_overlay("prod")


@dataclass(frozen=True)
class ServiceCode:
    """A service as its code defines it: its ServiceSpec (topics it produces, subscriptions) and Settings class."""

    name: str
    package: str
    spec: Any
    settings_class: type


@pytest.fixture(scope="session")
def services() -> list[ServiceCode]:
    out = []
    for info in SERVICES.values():
        package = info.module.rpartition(".")[0]
        main = importlib.import_module(info.module)
        config = importlib.import_module(f"{package}.config")
        out.append(ServiceCode(info.name, package, main.SPEC, config.Settings))
    return out
