"""The user guide (docs/guide) says what the code does: snippets parse, commands exist, tables match, links resolve.

Pure-Python checks: nothing is started, nothing is called over the network.
"""

from __future__ import annotations

import importlib
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from greenzone_common.cli import app
from greenzone_common.client import ClientSettings
from greenzone_common.contracts import registry
from greenzone_common.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guide"
PAGES = sorted(GUIDE.glob("*.md"))
EXPECTED_PAGES = {"README.md", "getting-started.md", "concepts.md", "integrations.md", "operating.md", "events.md"}

FENCE = re.compile(r"^[ \t]*```([\w-]*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.MULTILINE | re.DOTALL)
#: A ``greenzone`` (or ``.venv/bin/greenzone``) invocation and the command words that follow it.
INVOCATION = re.compile(r"(?<![\w./-])(?:\.venv/bin/)?greenzone(?=[ \t]|$)((?:[ \t]+[a-z][a-z-]*(?=[\s;)'\"|&]|$))*)")
VARIABLE = re.compile(r"`(GREENZONE_[A-Z0-9_]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _snippets(*languages: str) -> Iterator[tuple[str, str]]:
    for page in PAGES:
        for match in FENCE.finditer(page.read_text()):
            if match.group(1) in languages:
                line = page.read_text()[: match.start()].count("\n") + 1
                yield f"{page.name}:{line}", textwrap.dedent(match.group(2))


def _section(page: str, marker: str) -> str:
    text = (GUIDE / page).read_text()
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    assert start in text and end in text, f"{page} lost its {marker} markers"
    return text[text.index(start) + len(start) : text.index(end)]


def _first_column(section: str) -> list[str]:
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]  # skip header and separator
    return [row.split("|")[1].strip() for row in rows]


def test_the_guide_has_its_pages() -> None:
    assert {p.name for p in PAGES} >= EXPECTED_PAGES


def test_the_readme_links_the_guide() -> None:
    assert "(docs/guide/README.md)" in (ROOT / "README.md").read_text()


# --- snippets ----------------------------------------------------------------------------------------------------


def test_yaml_snippets_parse() -> None:
    snippets = list(_snippets("yaml", "yml"))
    assert len(snippets) >= 3  # GitHub Actions, GitLab CI, Tekton
    for where, text in snippets:
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{where}: {exc}")
        assert isinstance(document, dict), f"{where}: not a mapping"


def test_the_ci_snippets_are_what_they_claim() -> None:
    documents = [yaml.safe_load(text) for _, text in _snippets("yaml", "yml")]
    # PyYAML reads GitHub's `on:` as the boolean True
    github = [d for d in documents if "jobs" in d and ("on" in d or True in d)]
    gitlab = [d for d in documents if "stages" in d]
    tekton = [d for d in documents if d.get("apiVersion", "").startswith("tekton.dev/") and d.get("kind") == "Task"]
    assert github and gitlab and tekton
    for document in github + gitlab + tekton:
        assert "greenzone gate check" in yaml.safe_dump(document, width=10_000)
    steps = [step for job in github[0]["jobs"].values() for step in job["steps"]]
    assert any("greenzone evidence junit" in step.get("run", "") for step in steps)
    assert tekton[0]["spec"]["steps"]


def test_the_jenkinsfile_runs_the_gate() -> None:
    snippets = [text for _, text in _snippets("groovy")]
    assert snippets, "no Jenkinsfile snippet"
    jenkinsfile = next(text for text in snippets if "pipeline {" in text)
    assert "greenzone gate check --service" in jenkinsfile
    assert "greenzone evidence junit" in jenkinsfile


def _invocations() -> list[tuple[str, list[str]]]:
    found = []
    for where, text in _snippets("sh", "bash", "shell", "console", "yaml", "yml", "groovy"):
        for line in text.splitlines():
            for match in INVOCATION.finditer(line):
                found.append((f"{where}: {line.strip()}", match.group(1).split()))
    return found


def test_shell_snippets_start_with_greenzone_commands() -> None:
    starts = [
        line.strip()
        for _, text in _snippets("sh", "bash")
        for line in text.splitlines()
        if line.strip().startswith(("greenzone ", ".venv/bin/greenzone "))
    ]
    assert len(starts) >= 10


def test_every_greenzone_invocation_names_a_command() -> None:
    invocations = _invocations()
    assert invocations
    runner = CliRunner()
    checked: dict[tuple[str, ...], int] = {}
    for where, words in invocations:
        assert words, f"{where}: `greenzone` without a command"
        key = tuple(words)
        if key not in checked:
            checked[key] = runner.invoke(app, [*words, "--help"]).exit_code
        assert checked[key] == 0, f"{where}: `greenzone {' '.join(words)}` is not a command"
    # the commands the guide promises are all there
    for expected in [
        ("token",),
        ("changes", "create"),
        ("changes", "submit"),
        ("changes", "approve"),
        ("gate", "check"),
        ("evidence", "junit"),
        ("replay",),
        ("dlq", "list"),
        ("dlq", "redrive"),
    ]:
        assert expected in checked, f"the guide never shows `greenzone {' '.join(expected)}`"


def test_invocation_pattern() -> None:
    def words(line: str) -> list[list[str]]:
        return [m.group(1).split() for m in INVOCATION.finditer(line)]

    assert words("TOKEN=$(.venv/bin/greenzone token --sub alice)") == [["token"]]
    assert words("greenzone evidence junit report.xml --service api") == [["evidence", "junit"]]
    assert words("sh 'greenzone gate check --service \"$S\"'") == [["gate", "check"]]
    assert words('greenzone changes submit "$CHANGE"') == [["changes", "submit"]]
    assert words("-hmac greenzone-dev-github-webhook-secret; topic greenzone.change") == []


# --- tables ------------------------------------------------------------------------------------------------------


def _settings_variables() -> set[str]:
    models = [CommonSettings]
    for config in sorted(ROOT.glob("services/*/src/*_svc/config.py")):
        package = config.parent.name
        models.append(importlib.import_module(f"{package}.config").Settings)
    assert len(models) == 5  # common + the four services
    return {f"GREENZONE_{field.upper()}" for model in models for field in model.model_fields}


def test_config_table_lists_every_setting_and_nothing_else() -> None:
    rows = _first_column(_section("operating.md", "config-table"))
    listed = [v for row in rows for v in VARIABLE.findall(row)]
    assert len(listed) == len(rows), "one variable per row"
    assert len(listed) == len(set(listed)), "a variable listed twice"
    expected = _settings_variables()
    assert set(listed) - expected == set(), "variables the settings do not have"
    assert expected - set(listed) == set(), "settings missing from the table"


def test_cli_table_lists_the_client_settings() -> None:
    rows = _first_column(_section("operating.md", "cli-table"))
    listed = {v for row in rows for v in VARIABLE.findall(row)}
    assert listed == {f"GREENZONE_{field.upper()}" for field in ClientSettings.model_fields}


def test_every_variable_named_in_the_guide_exists() -> None:
    known = _settings_variables() | {f"GREENZONE_{f.upper()}" for f in ClientSettings.model_fields}
    known |= {"GREENZONE_CLI"}  # the CI variable the integration snippets use for the pip requirement
    for page in PAGES:
        unknown = set(re.findall(r"\bGREENZONE_[A-Z0-9_]*[A-Z0-9]\b", page.read_text())) - known
        assert not unknown, f"{page.name} names unknown variables {sorted(unknown)}"


def test_event_table_matches_the_registry() -> None:
    section = _section("events.md", "event-table")
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    table = []
    for row in rows:
        cells = [cell.strip().strip("`") for cell in row.strip("|").split("|")]
        table.append((cells[0], cells[1], cells[2]))
    expected = [(model.event_type, model.topic, model.key_field) for model in registry]
    assert len(table) == len(set(table)), "an event type listed twice"
    assert sorted(table) == sorted(expected)


# --- links -------------------------------------------------------------------------------------------------------


def _anchors(page: Path) -> set[str]:
    headings = re.findall(r"^#+\s+(.+)$", page.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_relative_links_resolve() -> None:
    checked = 0
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                if target.startswith("#"):
                    assert target[1:] in _anchors(page), f"{page.name}: no heading for {target}"
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve()
            assert resolved.exists(), f"{page.name}: {target} does not resolve ({resolved})"
            if anchor and resolved.suffix == ".md":
                assert anchor in _anchors(resolved), f"{page.name}: {target} has no such heading"
            checked += 1
    assert checked >= 10
