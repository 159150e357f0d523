import change_svc.changes.models
import change_svc.projections.models  # noqa: F401
from change_svc.db import Base
from greenzone_common.migrations import run_env

run_env(Base.metadata)
