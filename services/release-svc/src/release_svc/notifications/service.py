"""Webhook notifications to a release's notification list.

Deliveries are rows written in the use case's own transaction (so a rolled-back use case notifies nobody and a
committed one is never forgotten); the sender task posts them afterwards, off the request path, signs each body
with the release's secret, and retries a failed post with exponential backoff until ``notify_max_attempts``.

Headers: ``X-Greenzone-Event`` (the kind), ``X-Greenzone-Delivery`` (stable across retries),
``X-Greenzone-Signature-256: sha256=<hex HMAC-SHA256 of the body with the release's secret>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from release_svc.notifications.models import NotificationDelivery
from release_svc.releases.models import Release

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Greenzone-Signature-256"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


def retry_delay(attempts: int, backoff: float) -> timedelta:
    """Delay before the next attempt after ``attempts`` failed ones: backoff, then doubling, at most an hour."""
    return timedelta(seconds=min(backoff * 2 ** max(attempts - 1, 0), 3600.0))


async def enqueue(session: AsyncSession, release: Release, kind: str, details: dict[str, Any], now: datetime) -> None:
    if not release.notify:
        return
    rows = []
    for url in release.notify:
        delivery_id = str(uuid.uuid4())
        payload = {
            "delivery_id": delivery_id,
            "event": kind,
            "occurred_at": now.isoformat(),
            "release": {
                "id": release.id,
                "name": release.name,
                "version": release.version,
                "services": release.services,
                "state": release.state,
                "milestones": release.milestones,
            },
            **details,
        }
        rows.append(
            {
                "delivery_id": delivery_id,
                "release_id": release.id,
                "url": url,
                "kind": kind,
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
            }
        )
    await session.execute(insert(NotificationDelivery), rows)


class Sender:
    """Posts due deliveries; several processes may run one (rows are claimed with SKIP LOCKED)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        max_attempts: int,
        backoff: float,
        timeout: float,
        batch: int = 50,
    ) -> None:
        self.sessions = sessions
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.batch = batch
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def close(self) -> None:
        await self.client.aclose()

    async def run(self, interval: float) -> None:
        while True:
            try:
                sent = await self.send_due()
            except Exception as exc:  # a database hiccup must not kill the loop
                log.warning("notifications.loop_failed", error=repr(exc))
                sent = 0
            if sent == 0:
                await asyncio.sleep(interval)

    async def send_due(self) -> int:
        """One pass: claim due deliveries, post them concurrently, record the results. Returns how many."""
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            rows: Sequence[Any] = (
                await session.execute(
                    select(NotificationDelivery, Release.notify_secret)
                    .join(Release, Release.id == NotificationDelivery.release_id)
                    .where(NotificationDelivery.status == "pending", NotificationDelivery.next_attempt_at <= now)
                    .order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id)
                    .limit(self.batch)
                    .with_for_update(of=NotificationDelivery, skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            results = await asyncio.gather(*(self._post(d, secret) for d, secret in rows))
            done = datetime.now(UTC)
            for (delivery, _), error in zip(rows, results, strict=True):
                attempts = delivery.attempts + 1
                values: dict[str, Any] = {"attempts": attempts, "last_error": error}
                if error is None:
                    values |= {"status": "delivered", "delivered_at": done}
                elif attempts >= self.max_attempts:
                    values |= {"status": "failed"}
                    log.warning("notifications.gave_up", url=delivery.url, attempts=attempts, error=error)
                else:
                    values |= {"next_attempt_at": done + retry_delay(attempts, self.backoff)}
                await session.execute(
                    update(NotificationDelivery).where(NotificationDelivery.id == delivery.id).values(**values)
                )
        return len(rows)

    async def _post(self, delivery: NotificationDelivery, secret: str) -> str | None:
        body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "greenzone-release-svc",
            "X-Greenzone-Event": delivery.kind,
            "X-Greenzone-Delivery": delivery.delivery_id,
            SIGNATURE_HEADER: sign(secret, body),
        }
        try:
            response = await self.client.post(delivery.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:2000]
        if response.is_success:
            return None
        return f"HTTP {response.status_code}"
