"""SARIF 2.1.0 (CodeQL, Semgrep, Trivy…) → findings by severity (``evidence.policy.finding_severity``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline_svc.evidence.policy import SEVERITIES, finding_severity


class InvalidSarif(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class SarifSummary:
    tool: str | None
    findings: dict[str, int]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _rules(run: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    tool = _dict(run.get("tool"))
    components = [_dict(tool.get("driver")), *(_dict(e) for e in tool.get("extensions") or [])]
    ordered = [_dict(r) for r in (_dict(tool.get("driver")).get("rules") or [])]
    by_id: dict[str, dict[str, Any]] = {}
    for component in components:
        for rule in component.get("rules") or []:
            rule = _dict(rule)
            if isinstance(rule.get("id"), str):
                by_id.setdefault(rule["id"], rule)
    return ordered, by_id


def _rule_of(result: dict[str, Any], ordered: list[dict[str, Any]], by_id: dict[str, dict[str, Any]]) -> dict[str, Any]:
    index = result.get("ruleIndex")
    if isinstance(index, int) and 0 <= index < len(ordered):
        return ordered[index]
    rule_id = result.get("ruleId") or _dict(result.get("rule")).get("id")
    return by_id.get(str(rule_id), {}) if rule_id else {}


def parse_sarif(doc: Any) -> SarifSummary:
    if not isinstance(doc, dict):
        raise InvalidSarif("body", "a SARIF log must be a JSON object")
    if doc.get("version") != "2.1.0":
        raise InvalidSarif("version", f"SARIF version {doc.get('version')!r} is not supported (only 2.1.0)")
    runs = doc.get("runs")
    if not isinstance(runs, list):
        raise InvalidSarif("runs", "is required and must be an array")
    findings = dict.fromkeys(SEVERITIES, 0)
    tools: list[str] = []
    for i, run in enumerate(runs):
        if not isinstance(run, dict):
            raise InvalidSarif(f"runs.{i}", "must be an object")
        name = _dict(_dict(run.get("tool")).get("driver")).get("name")
        if isinstance(name, str) and name not in tools:
            tools.append(name)
        ordered, by_id = _rules(run)
        results = run.get("results") or []
        if not isinstance(results, list):
            raise InvalidSarif(f"runs.{i}.results", "must be an array")
        for result in results:
            result = _dict(result)
            if result.get("kind") not in (None, "fail"):  # pass, open, informational, review, notApplicable
                continue
            rule = _rule_of(result, ordered, by_id)
            score = _dict(result.get("properties")).get("security-severity")
            if score is None:
                score = _dict(rule.get("properties")).get("security-severity")
            level = result.get("level") or _dict(rule.get("defaultConfiguration")).get("level")
            findings[finding_severity(score, level if isinstance(level, str) else None)] += 1
    return SarifSummary(tool=", ".join(tools) or None, findings=findings)
