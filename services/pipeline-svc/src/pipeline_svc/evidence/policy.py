"""Evidence rules, pure: a SARIF finding's severity and a test suite's outcome."""

from __future__ import annotations

SEVERITIES = ("critical", "high", "medium", "low", "note")
#: SARIF result levels → Greenzone severities (when no ``security-severity`` score is given)
LEVELS = {"error": "high", "warning": "medium", "note": "low", "none": "note"}


def severity_from_score(score: float) -> str:
    """CVSS-style ``security-severity`` (as GitHub code scanning reads it): ≥9 critical, ≥7 high, ≥4 medium,
    >0 low, 0 note."""
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    if score > 0.0:
        return "low"
    return "note"


def finding_severity(security_severity: object, level: str | None) -> str:
    """``properties.security-severity`` where present (the result's, else its rule's), else the SARIF level
    (the result's, else the rule's default; SARIF's own default is ``warning``)."""
    if security_severity is not None and not isinstance(security_severity, bool):
        try:
            return severity_from_score(float(str(security_severity)))
        except ValueError:
            pass
    return LEVELS.get((level or "warning").lower(), "medium")


def suite_outcome(failed: int, errors: int = 0) -> str:
    """A suite fails when any test failed or errored; skipped tests do not fail it."""
    return "failure" if failed + errors > 0 else "success"
