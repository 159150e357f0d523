"""Table tests of the pure rules: mapping, times, severities, JUnit/SARIF parsing, CloudEvents modes, signatures."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from pipeline_svc.evidence.policy import finding_severity, suite_outcome
from pipeline_svc.facts.policy import (
    normalise_environment,
    parse_purl,
    parse_time,
    repository_short_name,
    resolve_service,
    sha_from_commit_url,
    version_from_ref,
)
from pipeline_svc.facts.service import _NS, fact_id
from pipeline_svc.sources import cloudevents, signatures
from pipeline_svc.sources.facts import ServiceRef
from pipeline_svc.sources.junit import InvalidJUnit, parse_junit
from pipeline_svc.sources.sarif import InvalidSarif, parse_sarif


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("prod", "production"),
        ("PRD", "production"),
        ("Production", "production"),
        ("staging", "staging"),
        ("", "unknown"),
    ],
)
def test_environment_names(name: str, expected: str) -> None:
    assert normalise_environment(name) == expected


@pytest.mark.parametrize(
    ("ref", "repos", "artifacts", "expected"),
    [
        (ServiceRef(repository="octo-org/api"), {}, {}, "api"),
        (ServiceRef(repository="Octo-Org/API"), {"octo-org/api": "payments"}, {}, "payments"),
        (ServiceRef(artifact="myapp"), {}, {"myapp": "shop"}, "shop"),
        (ServiceRef(artifact="myapp"), {}, {}, "myapp"),
        (ServiceRef(explicit="billing", repository="octo-org/api"), {"octo-org/api": "payments"}, {}, "billing"),
        (ServiceRef(fallback="nightly"), {}, {}, "nightly"),
        (ServiceRef(), {}, {}, "unknown"),
    ],
)
def test_service_mapping(ref: ServiceRef, repos: dict[str, str], artifacts: dict[str, str], expected: str) -> None:
    assert resolve_service(ref, repos, artifacts) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2016-08-12 15:23:28 UTC", datetime(2016, 8, 12, 15, 23, 28, tzinfo=UTC)),
        ("2021-04-28 21:50:00 +0200", datetime(2021, 4, 28, 19, 50, tzinfo=UTC)),
        ("2021-02-23T02:41:37.886Z", datetime(2021, 2, 23, 2, 41, 37, 886000, tzinfo=UTC)),
        ("2019-05-15T15:20:55+00:00", datetime(2019, 5, 15, 15, 20, 55, tzinfo=UTC)),
        (1557933657, datetime(2019, 5, 15, 15, 20, 57, tzinfo=UTC)),
        ("not a time", None),
        (None, None),
    ],
)
def test_times_in_every_format(value: object, expected: datetime | None) -> None:
    assert parse_time(value) == expected


@pytest.mark.parametrize(
    ("purl", "name", "version"),
    [
        ("pkg:oci/myapp@sha256%3A0b31", "myapp", "sha256:0b31"),
        ("pkg:golang/mygit.com/myorg/myapp@234fd47", "myapp", "234fd47"),
        ("pkg:npm/%40scope/web@1.4.2?arch=x#sub", "web", "1.4.2"),
        ("pkg:generic/api", "api", None),
    ],
)
def test_purls(purl: str, name: str, version: str | None) -> None:
    parsed = parse_purl(purl)
    assert parsed is not None and (parsed.name, parsed.version) == (name, version)
    assert parse_purl("not-a-purl") is None


def test_small_helpers() -> None:
    assert repository_short_name("octo-org/api") == "api"
    assert repository_short_name("https://gitlab.com/group/sub/api.git") == "api"
    assert sha_from_commit_url("http://h/root/x/-/commit/279484c09fbe69ededfced8c1bb6e6d24616b468") == (
        "279484c09fbe69ededfced8c1bb6e6d24616b468"
    )
    assert sha_from_commit_url("http://h/root/x/-/jobs/1") is None
    assert version_from_ref("v1.4.2") == "v1.4.2"
    assert version_from_ref("refs/tags/1.0.0") == "1.0.0"
    assert version_from_ref("master") is None
    assert version_from_ref("1", default_branch="1") is None


@pytest.mark.parametrize(
    ("score", "level", "expected"),
    [
        ("9.8", None, "critical"),
        (7.5, "note", "high"),
        ("4.0", None, "medium"),
        ("0.1", None, "low"),
        ("0", None, "note"),
        (None, "error", "high"),
        (None, "warning", "medium"),
        (None, "note", "low"),
        (None, "none", "note"),
        (None, None, "medium"),  # SARIF's default level is warning
        ("n/a", "error", "high"),
    ],
)
def test_finding_severity(score: object, level: str | None, expected: str) -> None:
    assert finding_severity(score, level) == expected


def test_suite_outcome() -> None:
    assert suite_outcome(0) == "success"
    assert suite_outcome(1) == "failure"
    assert suite_outcome(0, errors=2) == "failure"


PYTEST_JUNIT = b"""<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="1"
skipped="1" tests="4" time="0.1"><testcase classname="t" name="a"/>
<testcase classname="t" name="b"><failure message="x"/></testcase>
<testcase classname="t" name="c"><skipped/></testcase><testcase classname="t" name="d"/></testsuite></testsuites>"""
SUREFIRE = b'<testsuite name="com.acme.ApiTest" tests="10" failures="0" errors="1" skipped="2"/>'
BOMB = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<testsuite name="x">&lol2;</testsuite>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE t [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><testsuite name="&xxe;"/>"""


def test_junit_counts_from_testcases_or_attributes() -> None:
    summary = parse_junit(PYTEST_JUNIT)
    assert (summary.suite, summary.passed, summary.failed, summary.skipped) == ("pytest", 2, 1, 1)
    summary = parse_junit(SUREFIRE)
    assert (summary.suite, summary.passed, summary.failed, summary.skipped) == ("com.acme.ApiTest", 7, 1, 2)


@pytest.mark.parametrize("body", [BOMB, XXE, b"<testsuite", b"<html/>"])
def test_junit_refuses_entities_and_garbage(body: bytes) -> None:
    with pytest.raises(InvalidJUnit):
        parse_junit(body)


def test_sarif_severity_from_rule_security_severity_else_level() -> None:
    doc = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "CodeQL",
                        "rules": [
                            {"id": "js/sqli", "properties": {"security-severity": "9.8"}},
                            {"id": "js/xss", "properties": {"security-severity": "7.1"}},
                            {"id": "js/style", "defaultConfiguration": {"level": "note"}},
                        ],
                    }
                },
                "results": [
                    {"ruleId": "js/sqli", "ruleIndex": 0},
                    {"ruleId": "js/xss"},
                    {"ruleId": "js/style"},
                    {"ruleId": "other", "level": "error"},
                    {"ruleId": "other"},
                    {"ruleId": "js/sqli", "kind": "pass"},
                ],
            }
        ],
    }
    summary = parse_sarif(doc)
    assert summary.tool == "CodeQL"
    assert summary.findings == {"critical": 1, "high": 2, "medium": 1, "low": 1, "note": 0}
    with pytest.raises(InvalidSarif) as err:
        parse_sarif({"version": "2.0.0", "runs": []})
    assert err.value.field == "version"


def test_cloudevents_binary_structured_and_batch() -> None:
    data = {"x": 1}
    [binary] = cloudevents.parse_request(
        {"content-type": "application/json", "ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"},
        json.dumps(data).encode(),
        max_batch=10,
    )
    assert (binary.id, binary.source, binary.type, binary.data) == ("1", "/s", "t", data)
    event = {"specversion": "1.0", "id": "2", "source": "/s", "type": "t", "data": data}
    [structured] = cloudevents.parse_request(
        {"content-type": "application/cloudevents+json; charset=utf-8"}, json.dumps(event).encode(), max_batch=10
    )
    assert structured.data == data
    batch = cloudevents.parse_request(
        {"content-type": cloudevents.BATCH}, json.dumps([event, {**event, "id": "3"}]).encode(), max_batch=10
    )
    assert [e.id for e in batch] == ["2", "3"] and batch[1].loc == ("body", 1)


@pytest.mark.parametrize(
    ("headers", "body", "status", "slug"),
    [
        ({"content-type": "application/cloudevents+json"}, b"{nope", 400, "invalid-json"),
        ({"content-type": "text/plain"}, b"hi", 415, "unsupported-media-type"),
        (
            {"content-type": "application/cloudevents+json"},
            b'{"specversion": "0.3", "id": "1", "source": "/s", "type": "t"}',
            400,
            "unsupported-specversion",
        ),
        (
            {"content-type": "application/cloudevents+json"},
            b'{"specversion": "1.0", "id": "1", "type": "t"}',
            400,
            None,
        ),
        ({"content-type": "application/json"}, b"{}", 400, "invalid-cloudevent"),
        ({"content-type": cloudevents.BATCH}, json.dumps([{}] * 11).encode(), 400, "batch-too-large"),
        (
            {
                "content-type": "application/xml",
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "/s",
                "ce-type": "t",
            },
            b"<x/>",
            415,
            "unsupported-media-type",
        ),
    ],
)
def test_cloudevents_bad_requests(headers: dict[str, str], body: bytes, status: int, slug: str | None) -> None:
    with pytest.raises(cloudevents.BadCloudEvent) as err:
        cloudevents.parse_request(headers, body, max_batch=10)
    assert err.value.status == status
    if slug:
        assert err.value.slug == slug


def test_signatures() -> None:
    body = b'{"zen": "Keep it logically awesome."}'
    good = signatures.github_signature("s3cret", body)
    assert signatures.github_signature_valid("s3cret", body, good)
    assert not signatures.github_signature_valid("s3cret", body + b" ", good)
    assert not signatures.github_signature_valid("other", body, good)
    assert not signatures.github_signature_valid("s3cret", body, None)
    assert not signatures.github_signature_valid("s3cret", body, "sha1=" + good[7:])
    assert signatures.gitlab_token_valid("tok", "tok")
    assert not signatures.gitlab_token_valid("tok", "tok2")
    assert not signatures.gitlab_token_valid("tok", None)


# --- fact ids ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "parts",
    [
        ("run", "cdevents", "pipeline", "/bench/ci/run-1"),
        ("deployment", "github", 1234, "success"),
        ("cdevent", "service.deployed", "gitlab", "ünïcode ✓"),
        ("merge",),
    ],
)
def test_fact_ids_are_the_uuid5_recorded_facts_already_carry(parts: tuple[object, ...]) -> None:
    assert fact_id(*parts) == uuid.uuid5(_NS, "\x1f".join(str(p) for p in parts))
