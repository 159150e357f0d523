"""Where the shared third-party conformance payloads are (``../shared/conformance`` beside the checkout).

Tests read them as they are. ``GREENZONE_CONFORMANCE_DIR`` points elsewhere when the checkout does not sit beside
``shared/`` (a clone in another folder); otherwise the folders above the checkout are searched.
"""

from __future__ import annotations

import os
from pathlib import Path


def conformance_dir(start: Path | None = None) -> Path:
    configured = os.environ.get("GREENZONE_CONFORMANCE_DIR")
    if configured:
        return Path(configured)
    here = (start or Path(__file__)).resolve()
    for folder in here.parents:
        candidate = folder / "shared" / "conformance"
        if candidate.is_dir():
            return candidate
    for fallback in (Path("/work/shared/conformance"),):
        if fallback.is_dir():
            return fallback
    raise FileNotFoundError(
        "the shared conformance payloads were not found beside the checkout; set GREENZONE_CONFORMANCE_DIR"
    )
