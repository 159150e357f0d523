"""Secrets never reach the logs: values under secret-looking keys are replaced, however deep they sit."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator

import pytest
import structlog

from greenzone_common import telemetry
from greenzone_common.telemetry import REDACTED, redact


@pytest.mark.parametrize(
    "key",
    [
        "jwt_secret",
        "SECRET",
        "token",
        "access_token",
        "password",
        "db_passwd",
        "Authorization",
        "api_key",
        "apikey",
        "X-Api-Key",
        "signature",
        "webhook_signature",
    ],
)
def test_secret_looking_key_is_redacted(key: str) -> None:
    assert redact({key: "s3cr3t", "service": "api"}) == {key: REDACTED, "service": "api"}


def test_ordinary_keys_keep_their_values() -> None:
    event = {"event": "change.created", "change_id": "c-1", "count": 3, "ok": True, "nothing": None}

    assert redact(event) == event


def test_nested_mappings_are_redacted_at_every_level() -> None:
    event = {
        "event": "http.request",
        "request": {"headers": {"authorization": "Bearer abc", "accept": "application/json"}},
        "settings": {"database": {"password": "pw", "host": "db"}},
    }

    assert redact(event) == {
        "event": "http.request",
        "request": {"headers": {"authorization": REDACTED, "accept": "application/json"}},
        "settings": {"database": {"password": REDACTED, "host": "db"}},
    }


def test_a_whole_secret_looking_section_is_redacted_without_looking_inside() -> None:
    assert redact({"secrets": {"a": 1, "b": 2}}) == {"secrets": REDACTED}


def test_mappings_inside_lists_are_redacted() -> None:
    event = {"webhooks": [{"url": "https://ci.example.com/hook", "token": "t0k3n"}], "tags": ["a", "b"]}

    assert redact(event) == {
        "webhooks": [{"url": "https://ci.example.com/hook", "token": REDACTED}],
        "tags": ["a", "b"],
    }


def test_redaction_leaves_the_original_untouched() -> None:
    event = {"token": "t0k3n", "nested": {"password": "pw"}}

    redact(event)

    assert event == {"token": "t0k3n", "nested": {"password": "pw"}}


@pytest.fixture
def json_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """What the services' logging set-up writes, undone afterwards."""
    saved = structlog.get_config()
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    telemetry.configure_logging("test-svc", "INFO", json_logs=True)
    try:
        yield stream
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.configure(**saved)


def test_logged_secrets_come_out_redacted(json_log: io.StringIO) -> None:
    structlog.get_logger("test").info("login", user="alice", password="hunter2", headers={"Authorization": "x"})

    line = json.loads(json_log.getvalue().strip().splitlines()[-1])
    assert line["user"] == "alice"
    assert line["password"] == REDACTED
    assert line["headers"] == {"Authorization": REDACTED}
    assert "hunter2" not in json.dumps(line)
