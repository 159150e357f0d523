"""Settings read from the environment (prefix ``GREENZONE_``); nothing else reads os.environ.

Each service subclasses :class:`CommonSettings` with what only it needs. Outside development a missing or
default secret stops the process at start, with a message that names the variable.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The development JWT secret. Accepted only when ``GREENZONE_ENV=development``.
DEV_JWT_SECRET = "greenzone-dev-secret-not-for-production"  # noqa: S105 - the documented dev default, refused elsewhere


class InsecureSettingsError(RuntimeError):
    """A secret is missing or left at its development default outside development."""


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GREENZONE_", extra="ignore", frozen=True)

    env: Literal["development", "test", "staging", "production"] = "development"
    service_name: str = "greenzone"

    database_url: str = "postgresql://postgres@127.0.0.1:5432/greenzone"
    # a round trip before every checkout (about 0.3 ms of a request's CPU). Off: a connection found dead fails that
    # one request and SQLAlchemy then discards the whole pool; on, for links that drop idle connections silently.
    database_pool_pre_ping: bool = False
    # connections each process keeps open. Beyond them up to ``overflow`` more are opened when a burst needs them and
    # closed again when returned: each one costs a connection set-up and a PostgreSQL backend started and stopped,
    # so a pool smaller than the usual concurrency pays that on every request of the burst.
    database_pool_size: int = Field(default=20, ge=1)
    database_pool_overflow: int = Field(default=10, ge=0)
    kafka_bootstrap: str = "127.0.0.1:9092"
    # Tansu rejects both; real Kafka should turn idempotence on (deploy/k8s does).
    kafka_enable_idempotence: bool = False
    kafka_transactional_id: str | None = None
    kafka_client_id: str | None = None
    # Real clusters: TLS and SASL (Strimzi's KafkaUser with SCRAM-SHA-512 on its tls listener, say).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    # Off where topics are managed elsewhere (Strimzi KafkaTopic resources).
    kafka_create_topics: bool = True
    # Tansu completes a group join after half the session timeout; Kafka's minimum is 6 s by default.
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1000)
    kafka_heartbeat_interval_ms: int = Field(default=3_000, ge=100)

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    outbox_retention: timedelta = timedelta(days=7)
    relay_enabled: bool = True
    relay_batch_size: int = Field(default=2000, ge=1, le=50_000)
    relay_poll_interval: float = Field(default=1.0, gt=0)
    # Appended to every consumer group name: a new suffix starts fresh groups (rebuild projections, isolate runs).
    consumer_group_suffix: str = ""
    consumer_batch_size: int = Field(default=1000, ge=1, le=10_000)
    consumer_max_retries: int = Field(default=3, ge=0, le=10)
    consumer_retry_backoff: float = Field(default=0.2, ge=0)
    heartbeat_interval: float = Field(default=30.0, gt=0)

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    migrate_on_start: bool = True
    log_level: str = "INFO"
    log_json: bool = True

    @property
    def is_development(self) -> bool:
        return self.env == "development"

    def secrets_to_check(self) -> dict[str, SecretStr | None]:
        """The secrets (by environment variable name) that must be real outside development."""
        if self.jwks_url:
            return {}
        return {"GREENZONE_JWT_SECRET": self.jwt_secret}

    @model_validator(mode="after")
    def _refuse_default_secrets_outside_development(self) -> CommonSettings:
        if self.is_development:
            return self
        for variable, value in self.secrets_to_check().items():
            secret = value.get_secret_value() if value is not None else ""
            if not secret or secret == DEV_JWT_SECRET or secret.startswith("greenzone-dev-"):
                raise InsecureSettingsError(
                    f"{variable} is missing or has its development default; "
                    f"set it (GREENZONE_ENV={self.env} refuses to start without it)"
                )
        return self

    @property
    def asyncpg_dsn(self) -> str:
        """The database URL as asyncpg wants it (no SQLAlchemy driver suffix)."""
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    @property
    def sqlalchemy_url(self) -> str:
        url = self.asyncpg_dsn
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        return url
