"""Mapping rules of API.md (pipeline-svc), as pure functions of plain data.

- service = the catalogue entry for the repository or artifact, else the repository's short name;
  a CDEvents ``service.*`` event's service is its ``artifactId`` package name (purl ``pkg:<type>/<name>@<version>``);
  an ``incident.*`` event's service is ``subject.content.service.id``, else its artifact's package name;
- environment names as release-svc spells them: ``prod`` and ``prd`` mean ``production``;
- times from any of the formats the tools send, always UTC.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from pipeline_svc.sources.facts import ServiceRef

ENVIRONMENT_ALIASES = {"prod": "production", "prd": "production"}
UNKNOWN_SERVICE = "unknown"
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_COMMIT_IN_URL = re.compile(r"/commits?/([0-9a-fA-F]{40}(?:[0-9a-fA-F]{24})?)(?:[/?#]|$)")
_VERSION_LIKE = re.compile(r"^v?\d+(\.\d+)*([-+.][0-9A-Za-z.+-]*)?$")
_GITLAB_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?) ?(UTC|[+-]\d{4})?$")


def normalise_environment(name: str | None) -> str:
    """``Production`` → ``production``, ``prod``/``prd`` → ``production``; other names kept (lower case)."""
    value = (name or "").strip().lower()
    return ENVIRONMENT_ALIASES.get(value, value) or "unknown"


def repository_short_name(repository: str) -> str:
    """``octo-org/api`` → ``api``; also accepts URLs (``https://host/group/sub/api.git``)."""
    path = urlsplit(repository).path if "://" in repository else repository
    if ":" in path and "://" not in repository and "@" in path:  # git@host:group/api.git
        path = path.split(":", 1)[1]
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name.removesuffix(".git") or repository


def repository_path(url: str | None) -> str | None:
    """``https://gitlab.com/group/sub/app`` → ``group/sub/app`` (the form catalogues use)."""
    if not url:
        return None
    if "://" not in url:
        return url.strip("/").removesuffix(".git") or None
    path = urlsplit(url).path.strip("/").removesuffix(".git")
    return path or None


@dataclass(frozen=True)
class Purl:
    type: str
    namespace: str | None
    name: str
    version: str | None


def parse_purl(value: str | None) -> Purl | None:
    """``pkg:oci/myapp@sha256%3A0b31…`` → type oci, name myapp, version ``sha256:0b31…`` (percent-decoded)."""
    if not value or not value.startswith("pkg:"):
        return None
    rest = value[4:].split("#", 1)[0].split("?", 1)[0]
    version: str | None = None
    if "@" in rest:
        rest, raw_version = rest.rsplit("@", 1)
        version = unquote(raw_version) or None
    parts = [unquote(p) for p in rest.strip("/").split("/") if p]
    if len(parts) < 2:
        return None
    namespace = "/".join(parts[1:-1]) or None
    return Purl(type=parts[0].lower(), namespace=namespace, name=parts[-1], version=version)


def resolve_service(ref: ServiceRef, repositories: Mapping[str, str], artifacts: Mapping[str, str]) -> str:
    """The service a fact belongs to. ``repositories``/``artifacts`` map catalogue keys (lower case) to services."""
    if ref.explicit:
        return ref.explicit
    if ref.repository:
        known = repositories.get(ref.repository.lower())
        if known:
            return known
    if ref.artifact:
        known = artifacts.get(ref.artifact.lower())
        if known:
            return known
    if ref.repository:
        return repository_short_name(ref.repository)
    if ref.artifact:
        return ref.artifact
    return ref.fallback or UNKNOWN_SERVICE


def parse_time(value: object) -> datetime | None:
    """Any time a tool sends, as an aware UTC datetime: ISO 8601 (``Z`` or offset), GitLab's
    ``2021-04-28 21:50:00 +0200`` and ``2016-08-12 15:23:28 UTC``, or Unix seconds (GitHub's ``pushed_at``)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _GITLAB_TIME.match(text)
    if match:
        day, clock, zone = match.groups()
        offset = "+00:00" if zone in (None, "UTC") else f"{zone[:3]}:{zone[3:]}"
        text = f"{day}T{clock}{offset}"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # tools that omit the zone mean UTC
    return moment.astimezone(UTC)


def is_sha(value: str | None) -> bool:
    return bool(value) and bool(_SHA.match(value or ""))


def sha_from_commit_url(url: str | None) -> str | None:
    """The full SHA at the end of a commit URL (GitLab deployment events carry only the short SHA otherwise)."""
    if not url:
        return None
    match = _COMMIT_IN_URL.search(url)
    return match.group(1).lower() if match else None


def version_from_ref(ref: str | None, default_branch: str | None = None) -> str | None:
    """A ref names a version when it looks like one (``1.4.2``, ``v2.0.0-rc.1``) and is not the default branch."""
    if not ref:
        return None
    name = ref.removeprefix("refs/tags/")
    if name == default_branch or not _VERSION_LIKE.match(name):
        return None
    return name


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())
