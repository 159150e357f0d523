"""The pure mappers over the shared conformance payloads: field by field for a representative set, and the quirks
listed in the conformance README."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline_svc.facts.policy import resolve_service
from pipeline_svc.sources import cdevents, github, gitlab, tekton
from pipeline_svc.sources.facts import (
    ArtifactFact,
    DeploymentFact,
    IncidentFact,
    MergeFact,
    PushFact,
    RollbackFact,
    RunFact,
    TestsFact,
)

from ..conformance import CDEVENTS, GITHUB, GITLAB, TEKTON, cdevents_examples, github_files, load


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize("path", github_files(github.USED_EVENTS), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_used_github_payload_maps_without_error(path) -> None:
    facts = github.map_event(path.parent.name, load(path))
    assert isinstance(facts, list)


def test_github_deployment_status_success_is_a_successful_deployment() -> None:
    [fact] = github.map_event("deployment_status", load(GITHUB / "deployment_status/created.1.json"))
    assert isinstance(fact, DeploymentFact)
    assert fact.ref.repository == "Codertocat/Hello-World"
    assert resolve_service(fact.ref, {}, {}) == "Hello-World"
    assert fact.environment == "production"
    assert fact.outcome == "success"
    assert fact.commit == "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
    assert fact.at == utc(2019, 5, 15, 15, 20, 55)
    assert fact.source == "github"
    assert fact.source_id == "Codertocat/Hello-World/deployments/145988746"
    assert fact.version is None  # ref "master" is a branch, not a version


def test_github_deployment_status_in_progress_is_not_an_outcome() -> None:
    assert github.map_event("deployment_status", load(GITHUB / "deployment_status/created.2.json")) == []


def test_github_push_to_default_branch_carries_commits_and_push_time() -> None:
    [fact] = github.map_event("push", load(GITHUB / "push/event.5.json"))
    assert isinstance(fact, PushFact)
    assert fact.branch == "master" and fact.default_branch == "master"
    assert fact.pushed_at == datetime.fromtimestamp(1557933657, UTC)  # repository.pushed_at is Unix seconds
    assert [(c.sha, c.timestamp) for c in fact.commits] == [
        ("6113728f27ae82c7b1a177c8d03f9e96e0adf246", utc(2019, 5, 15, 15, 19, 25))
    ]


def test_github_tag_pushes_and_deletions_are_not_commits() -> None:
    for n in (1, 2, 3, 4, 7):
        assert github.map_event("push", load(GITHUB / f"push/event.{n}.json")) == []


def test_github_closed_pull_requests_that_say_merged_false_are_not_merges() -> None:
    """Quirk: both "closed" examples have merged: false."""
    for n in (1, 2):
        assert github.map_event("pull_request", load(GITHUB / f"pull_request/closed.{n}.json")) == []


def test_github_merged_pull_request_is_a_merged_change() -> None:
    payload = load(GITHUB / "pull_request/closed.1.json")
    payload["pull_request"] = {**payload["pull_request"], "merged": True, "merged_at": "2019-05-15T16:00:00Z"}
    [fact] = github.map_event("pull_request", payload)
    assert isinstance(fact, MergeFact)
    assert fact.change_id == "279147437" and fact.number == "2"
    assert fact.started_at == utc(2019, 5, 15, 15, 20, 33)
    assert fact.merged_at == utc(2019, 5, 15, 16)
    assert fact.commit == "c4295bd74fb0f4fda03689c3df3f2803b658fd85"


def test_github_completed_workflow_run_that_still_says_queued_is_not_finished() -> None:
    """Quirk: workflow_run "completed" example 1 has status: queued."""
    [fact] = github.map_event("workflow_run", load(GITHUB / "workflow_run/completed.1.json"))
    assert isinstance(fact, RunFact)
    assert fact.status == "queued" and fact.outcome is None and fact.finished_at is None


def test_github_workflow_run_completed() -> None:
    [fact] = github.map_event("workflow_run", load(GITHUB / "workflow_run/completed.2.json"))
    assert isinstance(fact, RunFact)
    assert (fact.kind, fact.status, fact.outcome, fact.pipeline) == ("pipeline", "completed", "success", "test")
    assert fact.queued_at == utc(2020, 10, 5, 16, 33, 24)
    assert fact.started_at == utc(2020, 10, 5, 16, 33, 49)
    assert fact.queue_s == 25.0
    assert fact.commit == "3484a3fb816e0859fd6e1cea078d76385ff50625"
    assert fact.branch == "master"


def test_github_workflow_job_is_a_build_with_duration() -> None:
    [fact] = github.map_event("workflow_job", load(GITHUB / "workflow_job/completed.1.json"))
    assert isinstance(fact, RunFact)
    assert (fact.kind, fact.outcome, fact.pipeline) == ("job", "failure", "CodeQL / linters")
    assert fact.duration_s == 198.0 and fact.queue_s == 60.0


def test_github_release_published_is_an_artifact() -> None:
    [fact] = github.map_event("release", load(GITHUB / "release/published.1.json"))
    assert isinstance(fact, ArtifactFact)
    assert (fact.name, fact.version) == ("Hello-World", "0.0.1")
    assert github.map_event("release", load(GITHUB / "release/created.1.json")) == []


def test_gitlab_deployment_full_sha_from_commit_url_and_offset_time() -> None:
    """Quirks: only short_sha + commit_url; status_changed_at "2021-04-28 21:50:00 +0200"."""
    [fact] = gitlab.map_event("Deployment Hook", load(GITLAB / "official-docs/deployment.json"))
    assert isinstance(fact, DeploymentFact)
    assert fact.commit == "279484c09fbe69ededfced8c1bb6e6d24616b468"
    assert fact.at == utc(2021, 4, 28, 19, 50)
    assert fact.environment == "staging" and fact.outcome == "success"
    assert fact.ref.repository == "root/test-deployment-webhooks"
    assert fact.source_id == "root/test-deployment-webhooks/deployments/15"
    [tagged] = gitlab.map_event("Deployment Hook", load(GITLAB / "go-gitlab-testdata/deployment.json"))
    assert isinstance(tagged, DeploymentFact) and tagged.version == "1.0.0"


def test_gitlab_pipeline_utc_timestamps_and_queue_time() -> None:
    """Quirk: "YYYY-MM-DD HH:MM:SS UTC"."""
    [fact] = gitlab.map_event("Pipeline Hook", load(GITLAB / "go-gitlab-testdata/pipeline.json"))
    assert isinstance(fact, RunFact)
    assert (fact.status, fact.outcome) == ("completed", "success")
    assert fact.queued_at == utc(2016, 8, 12, 15, 23, 28)
    assert fact.finished_at == utc(2016, 8, 12, 15, 26, 29)
    assert fact.duration_s == 63.0 and fact.queue_s == 12.0
    assert fact.commit == "bcbb5ec396a2c0f828686f14fac9b80b780504f2"
    assert fact.ref.repository == "gitlab-org/gitlab-test"


def test_gitlab_job_events_use_the_sha_not_the_pipeline_id() -> None:
    """Quirks: object_kind "build"; commit.id is the pipeline id; ISO times with Z."""
    [fact] = gitlab.map_event("Job Hook", load(GITLAB / "official-docs/job.json"))
    assert isinstance(fact, RunFact)
    assert fact.kind == "job"
    assert fact.commit == "2293ada6b400935a1378653304eaf6221e0fdb8f"
    assert fact.queued_at == datetime(2021, 2, 23, 2, 41, 37, 886000, tzinfo=UTC)
    assert fact.status == "queued" and fact.outcome is None
    [done] = gitlab.map_event("Job Hook", load(GITLAB / "go-gitlab-testdata/job.json"))
    assert isinstance(done, RunFact)
    assert done.commit == "95d49d1efbd941908580e79d65e4b5ecaf4a8305" and done.outcome == "success"
    assert done.ref.repository == "jsmithy2/release-tools-fake"  # no project object: from repository.homepage


def test_gitlab_push_to_default_branch() -> None:
    [fact] = gitlab.map_event("Push Hook", load(GITLAB / "official-docs/push.json"))
    assert isinstance(fact, PushFact)
    assert fact.default_branch == "master" and fact.branch == "master"
    assert len(fact.commits) == 2
    assert fact.commits[0].timestamp == utc(2011, 12, 12, 12, 27, 31)  # "+02:00" offset
    assert gitlab.map_event("Tag Push Hook", load(GITLAB / "go-gitlab-testdata/tag_push.json")) == []


def test_gitlab_release_is_an_artifact() -> None:
    [fact] = gitlab.map_event("Release Hook", load(GITLAB / "go-gitlab-testdata/release.json"))
    assert isinstance(fact, ArtifactFact)
    assert (fact.name, fact.version, fact.commit) == (
        "example-project",
        "1.0.0",
        "2626dbdb936782b5c54816b1c6d45b1279303c6d",
    )


def test_gitlab_opened_merge_request_is_not_a_merge() -> None:
    assert gitlab.map_event("Merge Request Hook", load(GITLAB / "go-gitlab-testdata/merge_request.json")) == []
    payload = load(GITLAB / "go-gitlab-testdata/merge_request.json")
    payload["object_attributes"] = {**payload["object_attributes"], "action": "merge", "state": "merged"}
    [fact] = gitlab.map_event("Merge Request Hook", payload)
    assert isinstance(fact, MergeFact) and fact.number == "1"


@pytest.mark.parametrize("path", cdevents_examples(), ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_every_cdevents_example_is_valid_against_its_release_schema(path) -> None:
    event = load(path)
    type_name = cdevents.validate(event)
    assert type_name == event["context"]["type"]
    assert isinstance(cdevents.map_event(event), list)


def test_cdevents_service_deployed_maps_purl_to_service_and_version() -> None:
    for release in ("v0.4.1", "v0.5.1"):
        [fact] = cdevents.map_event(load(CDEVENTS / release / "examples/service_deployed.json"))
        assert isinstance(fact, DeploymentFact)
        assert resolve_service(fact.ref, {}, {}) == "myapp"
        assert fact.version == "sha256:0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427"
        assert fact.environment == "test123" and fact.outcome == "success"
        assert fact.at == datetime(2023, 3, 20, 14, 27, 5, 315384, tzinfo=UTC)
        assert resolve_service(fact.ref, {}, {"myapp": "payments-api"}) == "payments-api"


def test_cdevents_rollback_and_incidents() -> None:
    [rollback] = cdevents.map_event(load(CDEVENTS / "v0.5.1/examples/service_rolledback.json"))
    assert isinstance(rollback, RollbackFact)
    [incident] = cdevents.map_event(load(CDEVENTS / "v0.5.1/examples/incident_detected.json"))
    assert isinstance(incident, IncidentFact)
    assert resolve_service(incident.ref, {}, {}) == "myApp"  # subject.content.service.id
    assert incident.environment == "prod1" and incident.action == "detected"
    [resolved] = cdevents.map_event(load(CDEVENTS / "v0.4.1/examples/incident_resolved.json"))
    assert isinstance(resolved, IncidentFact) and resolved.action == "resolved"


def test_cdevents_testsuiterun_finished_is_test_evidence_in_both_releases() -> None:
    for release in ("v0.4.1", "v0.5.1"):
        [fact] = cdevents.map_event(load(CDEVENTS / release / "examples/testsuiterun_finished.json"))
        assert isinstance(fact, TestsFact)
        assert fact.suite == "Auth TestSuite"
        assert fact.outcome == "failure"  # v0.4 "fail" and v0.5 "failure" alike


def test_cdevents_pipelinerun_finished_in_both_type_versions() -> None:
    """Quirk: pipelinerun.finished.0.2.0 (v0.4.1) vs 0.3.0 (v0.5.1)."""
    for release in ("v0.4.1", "v0.5.1"):
        [fact] = cdevents.map_event(load(CDEVENTS / release / "examples/pipelinerun_finished.json"))
        assert isinstance(fact, RunFact)
        assert (fact.pipeline, fact.outcome, fact.kind) == ("myPipeline", "failure", "pipeline")
        assert fact.url == "https://www.example.com/mySubject123"


def test_invalid_cdevent_names_the_failing_field() -> None:
    event = load(CDEVENTS / "v0.5.1/examples/service_deployed.json")
    del event["subject"]["content"]["artifactId"]
    with pytest.raises(cdevents.InvalidCDEvent) as err:
        cdevents.validate(event)
    assert err.value.field == "subject.content.artifactId"
    event = load(CDEVENTS / "v0.5.1/examples/service_deployed.json")
    event["subject"]["content"]["environment"]["id"] = ""
    with pytest.raises(cdevents.InvalidCDEvent) as err:
        cdevents.validate(event)
    assert err.value.field == "subject.content.environment.id"
    event = load(CDEVENTS / "v0.4.1/examples/service_deployed.json")
    event["context"]["type"] = "dev.cdevents.service.deployed.0.9.0"
    with pytest.raises(cdevents.InvalidCDEvent) as err:
        cdevents.validate(event)
    assert err.value.field == "context.type"


def test_tekton_example_is_a_running_task() -> None:
    headers = load(TEKTON / "taskrun.unknown.v1.headers.json")
    [fact] = tekton.map_event(headers["Ce-Type"], load(TEKTON / "taskrun.unknown.v1.data.json"), None)
    assert isinstance(fact, RunFact)
    assert (fact.kind, fact.status, fact.outcome, fact.pipeline) == ("task", "running", None, "curl")
    assert fact.queue_s == 0.0
    assert fact.run_key == "default/taskrun/4ccb4f01-3ecc-4eb4-87e1-76f04efeee5c"


def test_tekton_successful_pipelinerun_with_git_params() -> None:
    data = {
        "pipelineRun": {
            "metadata": {
                "name": "build-1",
                "namespace": "ci",
                "uid": "u1",
                "creationTimestamp": "2024-01-01T10:00:00Z",
            },
            "spec": {
                "pipelineRef": {"name": "build"},
                "params": [
                    {"name": "git-url", "value": "https://github.com/octo-org/api.git"},
                    {"name": "gitrevision", "value": "a" * 40},
                ],
            },
            "status": {"startTime": "2024-01-01T10:00:05Z", "completionTime": "2024-01-01T10:02:05Z"},
        }
    }
    [fact] = tekton.map_event("dev.tekton.event.pipelinerun.successful.v1", data, None)
    assert isinstance(fact, RunFact)
    assert fact.ref.repository == "octo-org/api" and fact.commit == "a" * 40
    assert (fact.outcome, fact.duration_s, fact.queue_s) == ("success", 120.0, 5.0)
    with pytest.raises(tekton.UnknownTektonType):
        tekton.parse_type("dev.tekton.event.pipelinerun.exploded.v1")
