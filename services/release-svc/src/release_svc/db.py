from __future__ import annotations

from greenzone_common.db import declarative_base

SCHEMA = "release"
Base = declarative_base(SCHEMA)
