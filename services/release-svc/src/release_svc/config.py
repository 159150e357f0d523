from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from pydantic import Field

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


@lru_cache
def get_settings() -> Settings:
    return Settings()
