from __future__ import annotations

from greenzone_common.db import declarative_base

SCHEMA = "pipeline"
Base = declarative_base(SCHEMA)
