"""Webhook notifications to a release's notification list.

Deliveries are rows written in the use case's own transaction (so a rolled-back use case notifies nobody and a
committed one is never forgotten); the sender task posts them afterwards, off the request path, signs each body
with the release's secret, and retries a failed post with exponential backoff until ``notify_max_attempts``.

Headers: ``X-Greenzone-Event`` (the kind), ``X-Greenzone-Delivery`` (stable across retries),
``X-Greenzone-Signature-256: sha256=<hex HMAC-SHA256 of the body with the release's secret>``.

Where a webhook may go is ``notifications.policy``: :class:`UrlGuard` checks a URL when the release is planned and
again before every attempt (a name's addresses can change in between), and the sender connects to the very address
it vetted (the URL's host stays in ``Host`` and in TLS SNI), so a second lookup cannot send it elsewhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from release_svc.notifications import policy
from release_svc.notifications.models import NotificationDelivery
from release_svc.notifications.policy import IPAddress, NotifyPolicy, Target, UnsafeUrl
from release_svc.releases.models import Release

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Greenzone-Signature-256"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


class Unresolvable(UnsafeUrl):
    pass


@dataclass(frozen=True)
class UrlGuard:
    """The notification policy with a name resolver (the system's; tests give their own)."""

    policy: NotifyPolicy
    resolver: Resolver = system_resolver
    timeout: float = 5.0

    @classmethod
    def from_settings(cls, allow_private: bool, allowed_hosts: Sequence[str], timeout: float) -> UrlGuard:
        return cls(NotifyPolicy.build(allow_private, allowed_hosts), timeout=timeout)

    async def vet(self, url: str) -> tuple[Target, list[IPAddress]]:
        """The URL's target and the addresses it may be called at; raises UnsafeUrl. Every address the name
        resolves to must pass: a name answering with one public and one internal address is refused."""
        target = policy.parse(url)
        policy.check_host(target, self.policy)
        literal = target.literal_ip
        if literal is not None:
            return target, [literal]
        try:
            addresses = await asyncio.wait_for(self.resolver(target.host, target.port), self.timeout)
        except (OSError, TimeoutError, UnicodeError) as exc:
            raise Unresolvable(f"host {target.host!r} does not resolve ({type(exc).__name__})") from None
        if not addresses:
            raise Unresolvable(f"host {target.host!r} does not resolve")
        for ip in addresses:
            policy.check_address(target, ip, self.policy)
        return target, addresses

    async def check_planned(self, url: str) -> None:
        """When a release is planned. Where private destinations are allowed (development, test) a name that does
        not resolve yet is accepted; elsewhere it cannot be vetted, so it is refused."""
        try:
            await self.vet(url)
        except Unresolvable:
            if not self.policy.allow_private:
                raise


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
        guard: UrlGuard,
        max_attempts: int,
        backoff: float,
        timeout: float,
        batch: int = 50,
    ) -> None:
        self.sessions = sessions
        self.guard = guard
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
            target, addresses = await self.guard.vet(delivery.url)
        except UnsafeUrl as exc:  # nothing is sent; retried like any failed attempt (the name may change back)
            log.warning("notifications.refused", url=delivery.url, reason=str(exc))
            return f"refused: {exc}"[:2000]
        headers["Host"] = target.host_header
        extensions = {"sni_hostname": target.host} if target.scheme == "https" and target.literal_ip is None else {}
        try:
            response = await self.client.post(
                target.pinned(addresses[0]), content=body, headers=headers, extensions=extensions
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:2000]
        if response.is_success:
            return None
        return f"HTTP {response.status_code}"
