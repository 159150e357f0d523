from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from greenzone_common.settings import CommonSettings


class Settings(CommonSettings):
    service_name: str = "release-svc"

    #: How long early life support lasts after a release's first successful production deployment.
    els_period: timedelta = timedelta(days=7)
    #: How often the background task looks for releases whose early life support is over.
    els_check_interval: float = Field(default=60.0, gt=0)

    #: Webhook notifications: poll interval of the sender, attempts before giving up, first retry delay
    #: (doubled at each attempt) and the HTTP timeout of one attempt.
    notify_poll_interval: float = Field(default=1.0, gt=0)
    notify_max_attempts: int = Field(default=6, ge=1, le=20)
    notify_backoff: float = Field(default=2.0, ge=0)
    notify_timeout: float = Field(default=5.0, gt=0)
    #: Webhooks to loopback, link-local, private and other non-public addresses (server-side request forgery).
    #: Unset: allowed in development and test (local receivers), refused in staging and production. Cloud
    #: metadata endpoints are refused whatever this says.
    notify_allow_private: bool | None = None
    #: Host names, addresses or networks trusted as webhook destinations even when they are not public
    #: (comma-separated: ``hooks.internal,10.20.0.0/16``).
    notify_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("notify_allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def notify_private_allowed(self) -> bool:
        if self.notify_allow_private is None:
            return self.env in ("development", "test")
        return self.notify_allow_private


@lru_cache
def get_settings() -> Settings:
    return Settings()
