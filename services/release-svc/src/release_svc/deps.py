from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from greenzone_common.auth import Principal, current_principal
from greenzone_common.problems import Problem
from release_svc.config import Settings
from release_svc.notifications.service import UrlGuard


def settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


SettingsDep = Annotated[Settings, Depends(settings)]


async def _notify_guard(request: Request) -> UrlGuard:
    guard: UrlGuard = request.app.state.notify_guard
    return guard


NotifyGuardDep = Annotated[UrlGuard, Depends(_notify_guard)]


# The gate is the hot path: FastAPI runs a plain ``def`` dependency in a worker thread, so its dependencies are
# ``async def`` here (same behaviour as greenzone_common's RequireRole, no thread hop); the gate reads the runtime
# (engine, outbox) from the app state directly.


GATE_ROLES = ("pipeline", "release_manager", "admin")


async def _gate_caller(request: Request) -> Principal:
    principal = current_principal(request)
    if not principal.has_any(*GATE_ROLES):
        raise Problem(403, f"This action needs one of the roles: {', '.join(GATE_ROLES)}", slug="forbidden")
    return principal


FastGateCaller = Annotated[Principal, Depends(_gate_caller)]
