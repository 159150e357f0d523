from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from greenzone_common.contracts.common import GateReasonCode, Timestamp


class GateRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(min_length=1, max_length=200)
    environment: str = Field(min_length=1, max_length=100)
    version: str | None = Field(default=None, max_length=100)
    commit: str | None = Field(default=None, max_length=100)
    change_id: str | None = Field(default=None, max_length=64)


class GateReasonRead(BaseModel):
    code: GateReasonCode
    message: str


class GateDecisionRead(BaseModel):
    decision: Literal["allow", "deny"]
    reasons: list[GateReasonRead]
    decision_id: str
    change_id: str | None
    evaluated_at: Timestamp
    service: str
    environment: str
    version: str | None
    commit: str | None
    change_auto_created: bool = False
