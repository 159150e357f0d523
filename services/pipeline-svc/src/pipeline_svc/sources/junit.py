"""JUnit XML (pytest, Maven Surefire, Jest, Go's junit reporters…) → test counts. Parsed with defusedxml: entity
declarations, external references and DTDs are refused, so an XML bomb or an XXE payload is a 400, not a hang."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring


class InvalidJUnit(ValueError):
    pass


@dataclass(frozen=True)
class JUnitSummary:
    suite: str | None
    tests: int
    failed: int  # failures + errors
    skipped: int

    @property
    def passed(self) -> int:
        return max(0, self.tests - self.failed - self.skipped)


def _int(element: Element, name: str) -> int | None:
    value = element.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError as exc:
        raise InvalidJUnit(f"attribute {name}={value!r} of <{element.tag}> is not a number") from exc


def _suite_counts(suite: Element) -> tuple[int, int, int]:
    """(tests, failed incl. errors, skipped) of one <testsuite>: its testcases when it lists them, else its
    attributes (some tools write only the attributes)."""
    cases = suite.findall("testcase")
    if cases:
        failed = sum(1 for c in cases if c.find("failure") is not None or c.find("error") is not None)
        skipped = sum(1 for c in cases if c.find("skipped") is not None and c.find("failure") is None)
        nested = [_suite_counts(s) for s in suite.findall("testsuite")]
        return (
            len(cases) + sum(n[0] for n in nested),
            failed + sum(n[1] for n in nested),
            skipped + sum(n[2] for n in nested),
        )
    nested = [_suite_counts(s) for s in suite.findall("testsuite")]
    if nested:
        return sum(n[0] for n in nested), sum(n[1] for n in nested), sum(n[2] for n in nested)
    tests = _int(suite, "tests") or 0
    failed = (_int(suite, "failures") or 0) + (_int(suite, "errors") or 0)
    skipped = (_int(suite, "skipped") or 0) + (_int(suite, "disabled") or 0)
    return tests, failed, skipped


def parse_junit(body: bytes) -> JUnitSummary:
    try:
        root = fromstring(body, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise InvalidJUnit(f"XML with entity declarations, DTDs or external references is refused ({exc})") from exc
    except (ParseError, ValueError) as exc:
        raise InvalidJUnit(f"not well-formed XML: {exc}") from exc
    if root.tag == "testsuites":
        suites = root.findall("testsuite")
        counts = [_suite_counts(s) for s in suites]
        tests = sum(c[0] for c in counts)
        if not suites:
            tests = _int(root, "tests") or 0
            failed = (_int(root, "failures") or 0) + (_int(root, "errors") or 0)
            return JUnitSummary(root.get("name"), tests, failed, _int(root, "skipped") or 0)
        name = root.get("name") or (suites[0].get("name") if len(suites) == 1 else None)
        return JUnitSummary(name, tests, sum(c[1] for c in counts), sum(c[2] for c in counts))
    if root.tag == "testsuite":
        tests, failed, skipped = _suite_counts(root)
        return JUnitSummary(root.get("name"), tests, failed, skipped)
    raise InvalidJUnit(f"the root element is <{root.tag}>, not <testsuites> or <testsuite>")
