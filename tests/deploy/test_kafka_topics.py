"""Kafka matches the event contract: a KafkaTopic for every topic (and its dead-letter topic), per service a
KafkaUser allowed to write exactly its own topics and to read what it consumes, and an operators' KafkaUser that
may list and re-drive dead letters and nothing else."""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock

from k8s_render import Rendered

from greenzone_common.contracts import CDEVENTS_TOPIC, PLATFORM_TOPIC, dlq_topic, registry
from greenzone_common.dlq import REDRIVE_GROUP

#: The KafkaUser people run the dead-letter commands as (deploy/k8s/base/kafka/ops-user.yaml).
OPS_USER = "greenzone-ops"


def topic_name(topic: dict[str, Any]) -> str:
    return str(topic["spec"].get("topicName", topic["metadata"]["name"]))


def contract_topics(services: list) -> set[str]:
    """Every topic of the registry, the CDEvents topic and every topic a service produces (which it creates at
    start with its DLQ when missing)."""
    topics = registry.topics() | {CDEVENTS_TOPIC}
    for service in services:
        topics |= set(service.spec.produces)
    return topics


def subscriptions(service: Any) -> list[Any]:
    # service.py builds them once the runtime exists; a stand-in app lets the factory reach for anything it needs.
    return list(service.spec.subscriptions(MagicMock()))


def acls(r: Rendered, service: str) -> list[dict[str, Any]]:
    return list(r.get("KafkaUser", service)["spec"]["authorization"]["acls"])


def allowed(r: Rendered, service: str, operation: str, resource_type: str, name: str) -> bool:
    for acl in acls(r, service):
        resource = acl["resource"]
        if resource["type"] != resource_type or acl.get("type", "allow") != "allow":
            continue
        if operation not in acl["operations"] and "All" not in acl["operations"]:
            continue
        pattern = resource["name"]
        if pattern == "*" or (name.startswith(pattern) if resource["patternType"] == "prefix" else name == pattern):
            return True
    return False


def test_every_contract_topic_and_its_dlq_has_a_kafka_topic(rendered: Rendered, services: list) -> None:
    declared = {topic_name(t) for t in rendered.of_kind("KafkaTopic")}
    wanted = contract_topics(services)
    wanted |= {dlq_topic(t) for t in wanted}
    assert wanted - declared == set(), "topics without a KafkaTopic"
    assert declared - wanted == set(), "KafkaTopics no contract names"


def test_each_service_writes_its_own_topics_only(rendered: Rendered, services: list) -> None:
    for service in services:
        own = set(service.spec.produces) | {PLATFORM_TOPIC}  # every service sends its heartbeat
        consumed = {t for sub in subscriptions(service) for t in sub.topics}
        for topic in own:
            assert allowed(rendered, service.name, "Write", "topic", topic), f"{service.name} cannot write {topic}"
        for topic in consumed:
            assert allowed(rendered, service.name, "Read", "topic", topic), f"{service.name} cannot read {topic}"
            assert allowed(rendered, service.name, "Write", "topic", dlq_topic(topic)), "its dead letters"
        writable = {
            acl["resource"]["name"]
            for acl in acls(rendered, service.name)
            if acl["resource"]["type"] == "topic" and {"Write", "All"} & set(acl["operations"])
        }
        assert all(
            acl["resource"]["patternType"] == "literal"
            for acl in acls(rendered, service.name)
            if acl["resource"]["type"] == "topic"
        ), "topic ACLs name topics"
        readable = {
            acl["resource"]["name"]
            for acl in acls(rendered, service.name)
            if acl["resource"]["type"] == "topic" and {"Read", "All"} & set(acl["operations"])
        }
        others = set().union(*(set(s.spec.produces) for s in services if s.name != service.name)) - own
        assert writable & others == set(), f"{service.name} may write another service's topics"
        assert writable == own | {dlq_topic(t) for t in consumed}, f"{service.name}: write ACLs beyond its needs"
        assert readable == consumed, f"{service.name}: read ACLs must be what its consumers subscribe to"


def test_each_service_reads_in_its_own_consumer_groups(rendered: Rendered, services: list) -> None:
    for service in services:
        for sub in subscriptions(service):
            assert sub.group.startswith(f"{service.name}."), f"group {sub.group} is not named after its service"
            assert allowed(rendered, service.name, "Read", "group", sub.group)


def test_autoscaling_stays_within_consumer_parallelism(rendered: Rendered, services: list) -> None:
    partitions = {topic_name(t): t["spec"]["partitions"] for t in rendered.of_kind("KafkaTopic")}
    main_topics = {t for t in partitions if not t.endswith(".dlq")} - {CDEVENTS_TOPIC}
    for service in services:
        hpa = rendered.get("HorizontalPodAutoscaler", service.name)
        assert hpa["spec"]["maxReplicas"] <= min(partitions[t] for t in main_topics), "idle consumers"


def test_the_ops_user_redrives_dead_letters_only(rendered: Rendered, services: list) -> None:
    # `greenzone dlq list|redrive` run as greenzone-ops (docs/operations.md): no service's KafkaUser may read the
    # dead letters or write the topics it consumes, and Kafka has no anonymous access.
    user = rendered.get("KafkaUser", OPS_USER)
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    topics = contract_topics(services)
    dlqs = {dlq_topic(t) for t in topics}
    for topic in topics:
        assert allowed(rendered, OPS_USER, "Read", "topic", dlq_topic(topic)), f"cannot list {dlq_topic(topic)}"
        assert allowed(rendered, OPS_USER, "Write", "topic", topic), f"cannot re-drive to {topic}"
    assert allowed(rendered, OPS_USER, "Read", "group", REDRIVE_GROUP)
    by_operation: dict[str, set[str]] = {"Read": set(), "Write": set()}
    for acl in acls(rendered, OPS_USER):
        resource = acl["resource"]
        assert resource["patternType"] == "literal" and acl.get("type", "allow") == "allow"
        assert "All" not in acl["operations"]
        assert resource["type"] in {"topic", "group"}
        for operation in by_operation.keys() & set(acl["operations"]):
            by_operation[operation].add(f"{resource['type']}:{resource['name']}")
    assert by_operation["Read"] == {f"topic:{t}" for t in dlqs} | {f"group:{REDRIVE_GROUP}"}
    assert by_operation["Write"] == {f"topic:{t}" for t in topics}
