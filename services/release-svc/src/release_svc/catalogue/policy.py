"""Catalogue naming rules."""

from __future__ import annotations


def repository_short_name(repository: str) -> str:
    """``octo-org/api`` → ``api``; ``https://gitlab.com/group/sub/api.git`` → ``api``."""
    name = repository.strip().rstrip("/")
    if name.endswith(".git"):
        name = name[: -len(".git")]
    return name.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
