from greenzone_common.migrations import run_env
from release_svc.db import Base

run_env(Base.metadata)
