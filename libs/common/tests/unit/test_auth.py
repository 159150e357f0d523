"""Bearer tokens: HS256 with the shared secret in development, RS256 against the provider's JWKS in production.

Every rejected token is a 401 problem with a ``WWW-Authenticate: Bearer`` challenge; nothing else leaks out.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from greenzone_common.auth import Authenticator, Principal, RequireRole, issue_dev_token
from greenzone_common.problems import Problem
from greenzone_common.settings import DEV_JWT_SECRET, CommonSettings

KID = "greenzone-test-key"


def expect_401(authenticator: Authenticator, token: str) -> Problem:
    with pytest.raises(Problem) as raised:
        authenticator.verify(token)
    problem = raised.value
    assert problem.status == 401
    assert problem.body()["type"].endswith("/invalid-token")
    assert problem.headers is not None
    assert problem.headers["WWW-Authenticate"].startswith("Bearer")
    return problem


def hs256(claims: dict[str, Any], secret: str = DEV_JWT_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def in_one_hour() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


# --- HS256 with the shared secret -------------------------------------------------------------------------------


@pytest.fixture
def hs_authenticator() -> Authenticator:
    return Authenticator(CommonSettings(env="development", jwks_url=None))


def test_valid_dev_token_gives_the_principal_with_its_roles(hs_authenticator: Authenticator) -> None:
    token = issue_dev_token(DEV_JWT_SECRET, "alice", ["approver", "cab"], teams=["payments"])

    principal = hs_authenticator.verify(token)

    assert principal == Principal(sub="alice", roles=frozenset({"approver", "cab"}), teams=frozenset({"payments"}))
    assert principal.has_any("cab", "admin")
    assert not principal.has_any("admin")


def test_token_without_roles_is_a_principal_without_roles(hs_authenticator: Authenticator) -> None:
    principal = hs_authenticator.verify(hs256({"sub": "bob", "exp": in_one_hour()}))

    assert principal.sub == "bob"
    assert principal.roles == frozenset()


def test_expired_token_is_401(hs_authenticator: Authenticator) -> None:
    token = issue_dev_token(DEV_JWT_SECRET, "alice", ["requester"], ttl=timedelta(minutes=-1))

    problem = expect_401(hs_authenticator, token)

    assert "expired" in problem.detail


def test_token_signed_with_another_secret_is_401(hs_authenticator: Authenticator) -> None:
    token = issue_dev_token("someone-elses-secret-0123456789abcdef", "mallory", ["admin"])

    problem = expect_401(hs_authenticator, token)

    assert "Signature verification failed" in problem.detail


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "", "eyJhbGciOiJIUzI1NiJ9..sig"])
def test_malformed_token_is_401(hs_authenticator: Authenticator, token: str) -> None:
    expect_401(hs_authenticator, token)


def test_token_without_expiry_is_401(hs_authenticator: Authenticator) -> None:
    problem = expect_401(hs_authenticator, hs256({"sub": "alice", "roles": ["admin"]}))

    assert "exp" in problem.detail


def test_token_without_subject_is_401(hs_authenticator: Authenticator) -> None:
    problem = expect_401(hs_authenticator, hs256({"roles": ["admin"], "exp": in_one_hour()}))

    assert "sub" in problem.detail


@pytest.mark.parametrize("roles", ["admin", {"admin": True}, ["admin", 1], None])
def test_roles_that_are_not_a_list_of_strings_are_401(hs_authenticator: Authenticator, roles: Any) -> None:
    problem = expect_401(hs_authenticator, hs256({"sub": "alice", "roles": roles, "exp": in_one_hour()}))

    assert "roles" in problem.detail


def test_unsigned_token_is_401(hs_authenticator: Authenticator) -> None:
    token = jwt.encode({"sub": "alice", "roles": ["admin"], "exp": in_one_hour()}, key=None, algorithm="none")

    expect_401(hs_authenticator, token)


def test_audience_and_issuer_are_checked_when_configured() -> None:
    authenticator = Authenticator(
        CommonSettings(env="development", jwt_audience="greenzone", jwt_issuer="https://idp.example.com")
    )
    good = {"sub": "alice", "exp": in_one_hour(), "aud": "greenzone", "iss": "https://idp.example.com"}

    assert authenticator.verify(hs256(good)).sub == "alice"
    expect_401(authenticator, hs256({**good, "aud": "another-app"}))
    expect_401(authenticator, hs256({**good, "iss": "https://evil.example.com"}))


def test_require_role_refuses_a_role_that_does_not_exist() -> None:
    with pytest.raises(ValueError, match="superuser"):
        RequireRole("admin", "superuser")


# --- RS256 against a JWKS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url(rsa_key: rsa.RSAPrivateKey) -> Iterator[str]:
    """A stand-in for the OIDC provider: serves the public key as a JWKS on 127.0.0.1."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": KID, "alg": "RS256", "use": "sig"}]}).encode()

    class JwksHandler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), JwksHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def jwks_authenticator(jwks_url: str) -> Authenticator:
    return Authenticator(CommonSettings(env="production", jwks_url=jwks_url))


def rs256(key: rsa.RSAPrivateKey, claims: dict[str, Any], kid: str = KID) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def test_rs256_token_signed_by_the_provider_is_accepted(
    jwks_authenticator: Authenticator, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = rs256(rsa_key, {"sub": "carol", "roles": ["release_manager"], "exp": in_one_hour()})

    principal = jwks_authenticator.verify(token)

    assert principal.sub == "carol"
    assert principal.roles == frozenset({"release_manager"})


def test_hs256_dev_token_is_rejected_when_verifying_against_a_jwks(jwks_authenticator: Authenticator) -> None:
    expect_401(jwks_authenticator, issue_dev_token(DEV_JWT_SECRET, "alice", ["admin"]))


def test_hs256_token_naming_the_providers_key_is_rejected(jwks_authenticator: Authenticator) -> None:
    # algorithm confusion: an HMAC token claiming the provider's kid must not be checked as HMAC
    token = jwt.encode(
        {"sub": "mallory", "roles": ["admin"], "exp": in_one_hour()},
        DEV_JWT_SECRET,
        algorithm="HS256",
        headers={"kid": KID},
    )

    expect_401(jwks_authenticator, token)


def test_rs256_token_signed_by_another_key_is_rejected(jwks_authenticator: Authenticator) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    expect_401(jwks_authenticator, rs256(stranger, {"sub": "mallory", "roles": ["admin"], "exp": in_one_hour()}))


def test_rs256_token_with_an_unknown_key_id_is_rejected(
    jwks_authenticator: Authenticator, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = rs256(rsa_key, {"sub": "carol", "exp": in_one_hour()}, kid="rotated-away")

    expect_401(jwks_authenticator, token)


def test_expired_rs256_token_is_rejected(jwks_authenticator: Authenticator, rsa_key: rsa.RSAPrivateKey) -> None:
    token = rs256(rsa_key, {"sub": "carol", "exp": datetime.now(UTC) - timedelta(minutes=1)})

    assert "expired" in expect_401(jwks_authenticator, token).detail


# --- remembered verifications -------------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(datetime.now(UTC).timestamp())
    monkeypatch.setattr("greenzone_common.auth.time", clock)
    return clock


def test_a_remembered_token_is_not_verified_again(hs_authenticator: Authenticator, clock: Clock) -> None:
    token = hs256({"sub": "ci", "roles": ["pipeline"], "exp": in_one_hour()})
    first = hs_authenticator.principal(token)
    calls = []
    original = hs_authenticator._verify
    hs_authenticator._verify = lambda t: calls.append(t) or original(t)  # type: ignore[method-assign]

    clock.now += Authenticator.CACHE_SECONDS - 1
    assert hs_authenticator.principal(token) == first
    assert calls == []

    clock.now += 2  # past the cache period: verified afresh
    assert hs_authenticator.principal(token) == first
    assert calls == [token]


def test_a_remembered_token_stops_working_at_its_expiry(hs_authenticator: Authenticator) -> None:
    expiry = int(time.time()) + 2  # whole seconds, as JWT times are
    token = hs256({"sub": "ci", "roles": ["pipeline"], "exp": expiry})
    assert hs_authenticator.principal(token).sub == "ci"
    assert hs_authenticator._verified[token][2] == expiry  # remembered until exp, not for the whole cache period

    time.sleep(max(0.0, expiry - time.time()) + 0.05)
    with pytest.raises(Problem) as raised:
        hs_authenticator.principal(token)
    assert raised.value.status == 401


def test_a_rejected_token_is_not_remembered(hs_authenticator: Authenticator, clock: Clock) -> None:
    forged = hs256({"sub": "mallory", "roles": ["admin"], "exp": in_one_hour()}, secret="not-the-secret")
    for _ in range(2):
        with pytest.raises(Problem):
            hs_authenticator.principal(forged)
    assert forged not in hs_authenticator._verified
