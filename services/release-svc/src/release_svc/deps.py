from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

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
