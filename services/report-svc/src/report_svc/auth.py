"""Who may read report-svc: any authenticated user holding any Greenzone role."""

from __future__ import annotations

from typing import Annotated

from greenzone_common.auth import ROLES, Principal, RequireRole

Reader = Annotated[Principal, RequireRole(*ROLES)]
