from __future__ import annotations

from greenzone_common.db import declarative_base

SCHEMA = "change"
Base = declarative_base(SCHEMA)
