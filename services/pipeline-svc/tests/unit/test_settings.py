from __future__ import annotations

import pytest

from greenzone_common.settings import InsecureSettingsError
from pipeline_svc.config import Settings

REAL = {"jwt_secret": "a-real-jwt-secret", "github_webhook_secret": "gh-real", "gitlab_webhook_token": "gl-real"}


@pytest.mark.parametrize("missing", ["GREENZONE_GITHUB_WEBHOOK_SECRET", "GREENZONE_GITLAB_WEBHOOK_TOKEN"])
def test_outside_development_a_default_webhook_secret_stops_the_process_naming_it(missing: str) -> None:
    values = dict(REAL)
    values[missing.removeprefix("GREENZONE_").lower()] = ""
    with pytest.raises(InsecureSettingsError, match=missing):
        Settings(env="production", **values)
    defaults = {k: v for k, v in REAL.items() if k != missing.removeprefix("GREENZONE_").lower()}
    with pytest.raises(InsecureSettingsError, match=missing):
        Settings(env="staging", **defaults)


def test_real_secrets_start_and_development_defaults_are_fine_in_development() -> None:
    assert Settings(env="production", **REAL).github_webhook_secret.get_secret_value() == "gh-real"
    assert Settings(env="development").gitlab_webhook_token.get_secret_value().startswith("greenzone-dev-")
