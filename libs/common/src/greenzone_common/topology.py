"""Which services exist, their schemas, app modules and default dev ports (used by the CLI and the dev stack)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    schema: str
    module: str  # "<package>.main", exposing create_app() and SPEC
    port: int


SERVICES: dict[str, ServiceInfo] = {
    s.name: s
    for s in (
        ServiceInfo("change-svc", "change", "change_svc.main", 8001),
        ServiceInfo("release-svc", "release", "release_svc.main", 8002),
        ServiceInfo("pipeline-svc", "pipeline", "pipeline_svc.main", 8003),
        ServiceInfo("report-svc", "report", "report_svc.main", 8004),
    )
}


def service(name: str) -> ServiceInfo:
    try:
        return SERVICES[name]
    except KeyError:
        raise KeyError(f"unknown service {name!r}; one of {', '.join(SERVICES)}") from None
