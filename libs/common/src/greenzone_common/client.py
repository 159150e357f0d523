"""The HTTP side of the ``greenzone`` CLI: where the services are, who is calling, and problem-aware requests."""

from __future__ import annotations

import json
from typing import Any

import httpx
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ClientSettings(BaseSettings):
    """The CLI's configuration (flags override these ``GREENZONE_*`` variables)."""

    model_config = SettingsConfigDict(env_prefix="GREENZONE_", extra="ignore")

    change_url: str = "http://127.0.0.1:8001"
    release_url: str = "http://127.0.0.1:8002"
    pipeline_url: str = "http://127.0.0.1:8003"
    report_url: str = "http://127.0.0.1:8004"
    token: SecretStr | None = None
    timeout: float = 30.0


class ApiError(Exception):
    """A non-2xx answer, carrying the RFC 9457 problem when there is one."""

    def __init__(self, status: int, problem: dict[str, Any] | None, text: str) -> None:
        self.status = status
        self.problem = problem or {}
        detail = self.problem.get("detail") or text[:500]
        errors = self.problem.get("errors") or []
        named = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}" for e in errors)
        super().__init__(f"HTTP {status}: {detail}" + (f" ({named})" if named and named not in detail else ""))


class Api:
    def __init__(self, settings: ClientSettings, token: str | None = None) -> None:
        self.settings = settings
        secret = token or (settings.token.get_secret_value() if settings.token else None)
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        self.http = httpx.Client(headers=headers, timeout=settings.timeout)

    def base(self, service: str) -> str:
        url: str = getattr(self.settings, f"{service}_url")
        return url.rstrip("/")

    def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...] = (200, 201, 202),
        **kwargs: Any,
    ) -> httpx.Response:
        try:
            response = self.http.request(method, self.base(service) + path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(0, None, f"{service} at {self.base(service)} is unreachable: {exc}") from exc
        if response.status_code not in ok:
            problem = None
            if response.headers.get("content-type", "").startswith(("application/problem+json", "application/json")):
                try:
                    problem = response.json()
                except json.JSONDecodeError:
                    problem = None
            raise ApiError(response.status_code, problem if isinstance(problem, dict) else None, response.text)
        return response

    def json(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(service, method, path, **kwargs).json()

    def pages(self, service: str, path: str, params: dict[str, Any], limit: int | None = None) -> list[Any]:
        """Every item of a paginated list (``items`` + ``next_cursor``), up to ``limit``."""
        items: list[Any] = []
        query = {k: v for k, v in params.items() if v is not None}
        while True:
            page = self.json(service, "GET", path, params=query)
            items += page.get("items", [])
            cursor = page.get("next_cursor")
            if not cursor or (limit is not None and len(items) >= limit):
                return items[:limit] if limit is not None else items
            query["cursor"] = cursor
