import change_svc.changes.models  # noqa: F401 - registers the tables
from change_svc.db import Base
from greenzone_common.migrations import run_env

run_env(Base.metadata)
