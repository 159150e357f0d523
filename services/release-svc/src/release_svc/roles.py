"""Who may do what (API.md): release managers and admins own the catalogue, environments, windows, freezes and
releases; pipelines, release managers and admins may ask the gate (``GateCaller``); every authenticated
role may read; the whole audit trail (``GET /audit``) is for release managers and admins."""

from __future__ import annotations

from typing import Annotated

from greenzone_common.auth import Principal, RequireRole

ReleaseManager = Annotated[Principal, RequireRole("release_manager", "admin")]
Auditor = Annotated[Principal, RequireRole("release_manager", "admin")]
GateCaller = Annotated[Principal, RequireRole("pipeline", "release_manager", "admin")]
