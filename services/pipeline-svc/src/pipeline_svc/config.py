from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr

from greenzone_common.settings import CommonSettings

#: Development defaults; the ``greenzone-dev-`` prefix makes the common settings refuse them outside development.
DEV_GITHUB_WEBHOOK_SECRET = "greenzone-dev-github-webhook-secret"  # noqa: S105 - documented dev default
DEV_GITLAB_WEBHOOK_TOKEN = "greenzone-dev-gitlab-webhook-token"  # noqa: S105 - documented dev default


class Settings(CommonSettings):
    service_name: str = "pipeline-svc"

    #: ``GREENZONE_GITHUB_WEBHOOK_SECRET``: the secret GitHub signs deliveries with (``X-Hub-Signature-256``).
    github_webhook_secret: SecretStr = SecretStr(DEV_GITHUB_WEBHOOK_SECRET)
    #: ``GREENZONE_GITLAB_WEBHOOK_TOKEN``: the token GitLab sends in ``X-Gitlab-Token``.
    gitlab_webhook_token: SecretStr = SecretStr(DEV_GITLAB_WEBHOOK_TOKEN)
    #: The most events one CloudEvents batch request may carry (API.md: up to 1,000).
    events_batch_max: int = Field(default=1000, ge=1, le=10_000)

    def secrets_to_check(self) -> dict[str, SecretStr | None]:
        return {
            **super().secrets_to_check(),
            "GREENZONE_GITHUB_WEBHOOK_SECRET": self.github_webhook_secret,
            "GREENZONE_GITLAB_WEBHOOK_TOKEN": self.gitlab_webhook_token,
        }


@lru_cache
def get_settings() -> Settings:
    return Settings()
