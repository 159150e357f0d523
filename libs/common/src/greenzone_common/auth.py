"""JWT bearer authentication and role checks.

Development signs HS256 tokens with ``GREENZONE_JWT_SECRET``; production verifies RS256 tokens against the OIDC
provider's JWKS (``GREENZONE_JWKS_URL``). Missing or invalid token: 401. Valid token without the role: 403.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from greenzone_common.problems import Problem
from greenzone_common.settings import CommonSettings

ROLES = ("viewer", "requester", "approver", "cab", "release_manager", "pipeline", "admin")
_BEARER = {"WWW-Authenticate": 'Bearer realm="greenzone"'}


@dataclass(frozen=True)
class Principal:
    sub: str
    roles: frozenset[str]
    teams: frozenset[str] = field(default_factory=frozenset)

    def has_any(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


class Authenticator:
    def __init__(self, settings: CommonSettings) -> None:
        self.settings = settings
        self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True) if settings.jwks_url else None

    @property
    def uses_jwks(self) -> bool:
        return self._jwks is not None

    def verify(self, token: str) -> Principal:
        try:
            if self._jwks is not None:
                key: Any = self._jwks.get_signing_key_from_jwt(token).key
                algorithms = ["RS256"]
            else:
                key = self.settings.jwt_secret.get_secret_value()
                algorithms = ["HS256"]
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": ["sub", "exp"], "verify_aud": self.settings.jwt_audience is not None},
            )
        except (jwt.PyJWTError, ValueError) as exc:
            raise Problem(401, f"Invalid bearer token: {exc}", slug="invalid-token", headers=_BEARER) from exc
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Problem(
                401, "Invalid bearer token: 'roles' must be a list of strings", slug="invalid-token", headers=_BEARER
            )
        teams = claims.get("teams", [])
        if not isinstance(teams, list) or not all(isinstance(t, str) for t in teams):
            raise Problem(
                401, "Invalid bearer token: 'teams' must be a list of strings", slug="invalid-token", headers=_BEARER
            )
        return Principal(sub=str(claims["sub"]), roles=frozenset(roles), teams=frozenset(teams))


def issue_dev_token(
    secret: str,
    sub: str,
    roles: list[str],
    *,
    teams: list[str] | None = None,
    ttl: timedelta = timedelta(hours=12),
) -> str:
    """An HS256 token for development and tests (``greenzone token``)."""
    now = datetime.now(UTC)
    claims: dict[str, Any] = {"sub": sub, "roles": roles, "iat": now, "exp": now + ttl}
    if teams:
        claims["teams"] = teams
    return jwt.encode(claims, secret, algorithm="HS256")


def current_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "Missing bearer token (Authorization: Bearer <JWT>)", slug="unauthorized", headers=_BEARER)
    authenticator: Authenticator = request.app.state.authenticator
    principal = authenticator.verify(token.strip())
    request.state.principal = principal
    return principal


async def _principal_dependency(request: Request) -> Principal:
    """``current_principal`` as a dependency. An HS256 token is verified in the event loop (no I/O: a plain ``def``
    dependency would cost a thread-pool hop per request); a JWKS lookup, which may fetch keys over the network,
    runs in the thread pool."""
    authenticator: Authenticator = request.app.state.authenticator
    if authenticator.uses_jwks:
        return await run_in_threadpool(current_principal, request)
    return current_principal(request)


CurrentUser = Annotated[Principal, Depends(_principal_dependency)]


def RequireRole(*roles: str) -> Any:
    """A dependency that yields the principal when it holds any of ``roles``."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    async def check(principal: CurrentUser) -> Principal:
        if not principal.has_any(*roles):
            raise Problem(403, f"This action needs one of the roles: {', '.join(roles)}", slug="forbidden")
        return principal

    return Depends(check)
