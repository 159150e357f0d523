import report_svc.projections.facts
import report_svc.projections.models  # noqa: F401 - registers the tables
from greenzone_common.migrations import run_env
from report_svc.db import Base

run_env(Base.metadata)
