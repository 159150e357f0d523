"""JWT bearer authentication and role checks.

Development signs HS256 tokens with ``GREENZONE_JWT_SECRET``; production verifies RS256 tokens against the OIDC
provider's JWKS (``GREENZONE_JWKS_URL``). Missing or invalid token: 401. Valid token without the role: 403.
"""

from __future__ import annotations

import time
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
    """Verifies bearer tokens. A pipeline sends the same token with every request, so a verified token is
    remembered for at most ``CACHE_SECONDS`` (and never past its ``exp``/before its ``nbf``): verifying costs more
    than the rest of a gate decision's Python work, remembering it is a dictionary lookup. Only successes are
    remembered; a token that failed is checked again each time."""

    CACHE_SECONDS = 60.0
    CACHE_SIZE = 10_000

    def __init__(self, settings: CommonSettings) -> None:
        self.settings = settings
        self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True) if settings.jwks_url else None
        self._verified: dict[str, tuple[Principal, float, float]] = {}  # token -> (principal, not before, until)

    def principal(self, token: str) -> Principal:
        """The token's principal: remembered when verified recently, else verified now."""
        now = time.time()
        hit = self._verified.get(token)
        if hit is not None and hit[1] <= now < hit[2]:
            return hit[0]
        principal, claims = self._verify(token)
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()  # bounded; refilling costs one verification per distinct token
        self._verified[token] = (
            principal,
            float(claims.get("nbf", 0)),
            min(float(claims["exp"]), now + self.CACHE_SECONDS),
        )
        return principal

    @property
    def uses_jwks(self) -> bool:
        return self._jwks is not None

    def verify(self, token: str) -> Principal:
        """Verify ``token`` now (signature, ``exp``, ``nbf``, audience, issuer, claims' shapes)."""
        return self._verify(token)[0]

    def _verify(self, token: str) -> tuple[Principal, dict[str, Any]]:
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
        return Principal(sub=str(claims["sub"]), roles=frozenset(roles), teams=frozenset(teams)), claims


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
    principal = authenticator.principal(token.strip())
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

    # one dependency, not one on top of CurrentUser: on a hot path each level costs a resolution per request
    async def check(request: Request) -> Principal:
        principal = await _principal_dependency(request)
        if not principal.has_any(*roles):
            raise Problem(403, f"This action needs one of the roles: {', '.join(roles)}", slug="forbidden")
        return principal

    return Depends(check)
