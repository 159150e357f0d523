"""Settings fail fast: outside development a missing or default JWT secret stops the process, naming the variable."""

from __future__ import annotations

import os

import pytest

from greenzone_common.settings import DEV_JWT_SECRET, CommonSettings, InsecureSettingsError

REAL_SECRET = "a-real-secret-from-the-vault-0123456789"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what each test sets: no GREENZONE_* leaking in from the shell running the suite."""
    for name in list(os.environ):
        if name.startswith("GREENZONE_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("env", ["test", "staging", "production"])
def test_missing_jwt_secret_outside_development_stops_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    monkeypatch.setenv("GREENZONE_ENV", env)

    with pytest.raises(InsecureSettingsError, match="GREENZONE_JWT_SECRET"):
        CommonSettings()


def test_empty_jwt_secret_in_production_stops_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENZONE_ENV", "production")
    monkeypatch.setenv("GREENZONE_JWT_SECRET", "")

    with pytest.raises(InsecureSettingsError, match="GREENZONE_JWT_SECRET"):
        CommonSettings()


@pytest.mark.parametrize("secret", [DEV_JWT_SECRET, "greenzone-dev-something-else"])
def test_development_default_jwt_secret_in_production_stops_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("GREENZONE_ENV", "production")
    monkeypatch.setenv("GREENZONE_JWT_SECRET", secret)

    with pytest.raises(InsecureSettingsError, match="GREENZONE_JWT_SECRET") as raised:
        CommonSettings()
    assert "GREENZONE_ENV=production" in str(raised.value)


def test_real_jwt_secret_in_production_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENZONE_ENV", "production")
    monkeypatch.setenv("GREENZONE_JWT_SECRET", REAL_SECRET)

    settings = CommonSettings()

    assert settings.env == "production"
    assert not settings.is_development
    assert settings.jwt_secret.get_secret_value() == REAL_SECRET


def test_secret_is_not_shown_when_settings_are_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENZONE_ENV", "production")
    monkeypatch.setenv("GREENZONE_JWT_SECRET", REAL_SECRET)

    settings = CommonSettings()

    assert REAL_SECRET not in repr(settings)
    assert REAL_SECRET not in str(settings.model_dump())


def test_production_with_jwks_url_does_not_need_the_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENZONE_ENV", "production")
    monkeypatch.setenv("GREENZONE_JWKS_URL", "https://idp.example.com/.well-known/jwks.json")

    settings = CommonSettings()

    assert settings.jwks_url == "https://idp.example.com/.well-known/jwks.json"
    assert settings.secrets_to_check() == {}


def test_development_accepts_the_default_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENZONE_ENV", "development")

    settings = CommonSettings()

    assert settings.is_development
    assert settings.jwt_secret.get_secret_value() == DEV_JWT_SECRET


def test_development_is_the_default_environment() -> None:
    settings = CommonSettings()

    assert settings.env == "development"
    assert settings.jwt_secret.get_secret_value() == DEV_JWT_SECRET


@pytest.mark.parametrize(
    ("database_url", "sqlalchemy_url"),
    [
        ("postgresql://u:p@db:5432/greenzone", "postgresql+asyncpg://u:p@db:5432/greenzone"),
        ("postgres://u:p@db:5432/greenzone", "postgresql+asyncpg://u:p@db:5432/greenzone"),
        ("postgresql+asyncpg://u:p@db:5432/greenzone", "postgresql+asyncpg://u:p@db:5432/greenzone"),
    ],
)
def test_sqlalchemy_url_uses_the_asyncpg_driver(
    monkeypatch: pytest.MonkeyPatch, database_url: str, sqlalchemy_url: str
) -> None:
    monkeypatch.setenv("GREENZONE_DATABASE_URL", database_url)

    assert CommonSettings().sqlalchemy_url == sqlalchemy_url


@pytest.mark.parametrize(
    ("database_url", "asyncpg_dsn"),
    [
        ("postgresql+asyncpg://u:p@db:5432/greenzone", "postgresql://u:p@db:5432/greenzone"),
        ("postgresql://u:p@db:5432/greenzone", "postgresql://u:p@db:5432/greenzone"),
        ("postgres://u:p@db:5432/greenzone", "postgres://u:p@db:5432/greenzone"),
    ],
)
def test_asyncpg_dsn_drops_the_sqlalchemy_driver_suffix(
    monkeypatch: pytest.MonkeyPatch, database_url: str, asyncpg_dsn: str
) -> None:
    monkeypatch.setenv("GREENZONE_DATABASE_URL", database_url)

    assert CommonSettings().asyncpg_dsn == asyncpg_dsn


def test_environment_variables_use_the_greenzone_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENZONE_KAFKA_BOOTSTRAP", "kafka-0:9092,kafka-1:9092")
    monkeypatch.setenv("GREENZONE_MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "not-read:1")

    settings = CommonSettings()

    assert settings.kafka_bootstrap == "kafka-0:9092,kafka-1:9092"
    assert settings.max_body_bytes == 4096


def test_the_engine_pools_as_many_connections_as_the_settings_say(monkeypatch: pytest.MonkeyPatch) -> None:
    from greenzone_common.db import make_engine

    monkeypatch.setenv("GREENZONE_DATABASE_POOL_SIZE", "7")
    monkeypatch.setenv("GREENZONE_DATABASE_POOL_OVERFLOW", "3")
    engine = make_engine(CommonSettings())

    assert engine.pool.size() == 7  # type: ignore[attr-defined]
    assert engine.pool._max_overflow == 3  # type: ignore[attr-defined]


def test_a_pool_of_no_connections_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENZONE_DATABASE_POOL_SIZE", "0")

    with pytest.raises(ValueError, match="database_pool_size"):
        CommonSettings()
