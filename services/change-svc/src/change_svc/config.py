from __future__ import annotations

from functools import lru_cache

from greenzone_common.settings import CommonSettings


class Settings(CommonSettings):
    service_name: str = "change-svc"


@lru_cache
def get_settings() -> Settings:
    return Settings()
