"""Test helpers: run an app in-process with its lifespan, mint tokens, wait for a condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from greenzone_common.auth import issue_dev_token
from greenzone_common.settings import DEV_JWT_SECRET

T = TypeVar("T")


def token(sub: str, *roles: str, secret: str = DEV_JWT_SECRET) -> str:
    return issue_dev_token(secret, sub, list(roles))


def bearer(sub: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub, *roles)}"}


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app started (migrations, relay, consumers) and a client talking to it in-process."""
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=45) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 15.0, every: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")
