"""How environment names from tools map onto the catalogue's names."""

from __future__ import annotations

ALIASES = {"prod": "production", "prd": "production"}


def canonical_environment(name: str) -> str:
    """``prod`` and ``prd`` (any case) mean ``production``; other names are kept, lower-cased and trimmed."""
    key = name.strip().lower()
    return ALIASES.get(key, key)
