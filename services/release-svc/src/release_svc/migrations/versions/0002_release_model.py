"""release schema: catalogue, environments (with the four defaults), windows, freezes, releases, projections,
gate decisions and webhook deliveries

Revision ID: 0002
"""

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from greenzone_common.contracts.release import EnvironmentDefined
from greenzone_common.outbox import Outbox
from greenzone_common.plumbing import plumbing_tables

revision = "0002"
down_revision = "0001"
SCHEMA = "release"

TZ = sa.DateTime(timezone=True)


def _now() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "services",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("repositories", JSONB, nullable=False),
        sa.Column("artifacts", JSONB, nullable=False),
        sa.Column("team", sa.String(200)),
        sa.Column("auto_registered", sa.Boolean, nullable=False),
        _now(),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    environments = op.create_table(
        "environments",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("production", sa.Boolean, nullable=False),
        _now(),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    defaults = [
        {"name": "dev", "rank": 10, "protected": False, "production": False},
        {"name": "test", "rank": 20, "protected": False, "production": False},
        {"name": "staging", "rank": 30, "protected": False, "production": False},
        {"name": "production", "rank": 40, "protected": True, "production": True},
    ]
    op.bulk_insert(environments, defaults)
    # announced like any environment defined later, in the same transaction as the rows
    now = datetime.now(UTC)
    outbox = Outbox(plumbing_tables(sa.MetaData(schema=SCHEMA)).outbox, source="/greenzone/release-svc")
    op.bulk_insert(outbox.table, [outbox.row(EnvironmentDefined(**env, defined_at=now)) for env in defaults])
    op.create_table(
        "windows",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("environment", sa.String(100), nullable=False, index=True),
        sa.Column("days", JSONB, nullable=False),
        sa.Column("start", sa.Time, nullable=False),
        sa.Column("end", sa.Time, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(200)),
        _now(),
        schema=SCHEMA,
    )
    op.create_table(
        "freezes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("start", TZ, nullable=False, index=True),
        sa.Column("end", TZ, nullable=False, index=True),
        sa.Column("environments", JSONB, nullable=False),
        sa.Column("services", JSONB, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200)),
        _now(),
        sa.Column("lifted_at", TZ),
        sa.Column("lifted_by", sa.String(200)),
        schema=SCHEMA,
    )
    op.create_table(
        "releases",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False, index=True),
        sa.Column("services", JSONB, nullable=False),
        sa.Column("changes", JSONB, nullable=False),
        sa.Column("milestones", JSONB, nullable=False),
        sa.Column("notify", JSONB, nullable=False),
        sa.Column("notify_secret", sa.String(100), nullable=False),
        sa.Column("depends_on", JSONB, nullable=False),
        sa.Column("state", sa.String(30), nullable=False, index=True),
        sa.Column("els_started_at", TZ),
        sa.Column("els_ends_at", TZ),
        sa.Column("closed_at", TZ),
        sa.Column("closed_by", sa.String(200)),
        sa.Column("created_by", sa.String(200)),
        _now(),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "changes",
        sa.Column("change_id", sa.String(64), primary_key=True),
        sa.Column("number", sa.String(40)),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("state", sa.String(30), nullable=False),
        sa.Column("state_rank", sa.Integer, nullable=False),
        sa.Column("title", sa.String(300)),
        sa.Column("version", sa.String(100)),
        sa.Column("release_id", sa.String(64)),
        sa.Column("planned_start", TZ),
        sa.Column("planned_end", TZ),
        sa.Column("auto_created", sa.Boolean, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_changes_service_environment", "changes", ["service", "environment"], schema=SCHEMA)
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("version", sa.String(100)),
        sa.Column("commit", sa.String(100)),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("source_id", sa.String(300), nullable=False),
        sa.Column("change_id", sa.String(64)),
        sa.Column("release_id", sa.String(64), index=True),
        sa.Column("decision_id", sa.String(64)),
        sa.UniqueConstraint("source", "source_id", name="uq_deployments_source_source_id"),
        schema=SCHEMA,
    )
    op.create_index("ix_deployments_service_environment", "deployments", ["service", "environment"], schema=SCHEMA)
    op.create_table(
        "rollbacks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("service", sa.String(200), nullable=False, index=True),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("version", sa.String(100)),
        sa.Column("at", TZ, nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("release_id", sa.String(64), index=True),
        sa.Column("reason", sa.String(2000), nullable=False),
        schema=SCHEMA,
    )
    evidence: list[tuple[str, list[sa.Column[Any]]]] = [
        (
            "test_reports",
            [
                sa.Column("suite", sa.String(300)),
                sa.Column("outcome", sa.String(20), nullable=False),
                sa.Column("passed", sa.Integer, nullable=False),
                sa.Column("failed", sa.Integer, nullable=False),
                sa.Column("skipped", sa.Integer, nullable=False),
            ],
        ),
        (
            "scan_reports",
            [
                sa.Column("tool", sa.String(200)),
                sa.Column("critical", sa.Integer, nullable=False),
                sa.Column("high", sa.Integer, nullable=False),
                sa.Column("medium", sa.Integer, nullable=False),
                sa.Column("low", sa.Integer, nullable=False),
            ],
        ),
    ]
    for name, extra in evidence:
        op.create_table(
            name,
            sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
            sa.Column("ce_id", sa.String(100), nullable=False, unique=True),
            sa.Column("service", sa.String(200), nullable=False),
            sa.Column("version", sa.String(100)),
            sa.Column("commit", sa.String(100)),
            *extra,
            sa.Column("reported_at", TZ, nullable=False),
            schema=SCHEMA,
        )
        op.create_index(f"ix_{name}_service_version", name, ["service", "version"], schema=SCHEMA)
        op.create_index(f"ix_{name}_service_commit", name, ["service", "commit"], schema=SCHEMA)
    op.create_table(
        "incidents",
        sa.Column("incident_id", sa.String(200), primary_key=True),
        sa.Column("service", sa.String(200), nullable=False, index=True),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("severity", sa.String(50)),
        sa.Column("version", sa.String(100)),
        sa.Column("detected_at", TZ),
        sa.Column("resolved_at", TZ),
        schema=SCHEMA,
    )
    op.create_table(
        "gate_decisions",
        sa.Column("decision_id", sa.String(36), primary_key=True),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("version", sa.String(100)),
        sa.Column("commit", sa.String(100)),
        sa.Column("decision", sa.String(10), nullable=False),
        sa.Column("reasons", JSONB, nullable=False),
        sa.Column("change_id", sa.String(64)),
        sa.Column("change_auto_created", sa.Boolean, nullable=False),
        sa.Column("requested_by", sa.String(200)),
        sa.Column("evaluated_at", TZ, nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_gate_decisions_service_evaluated_at", "gate_decisions", ["service", "evaluated_at"], schema=SCHEMA
    )
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("delivery_id", sa.String(36), nullable=False, unique=True),
        sa.Column("release_id", sa.String(36), nullable=False, index=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("delivered_at", TZ),
        sa.Column("last_error", sa.Text),
        _now(),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_notification_deliveries_due", "notification_deliveries", ["status", "next_attempt_at"], schema=SCHEMA
    )


def downgrade() -> None:
    for name in (
        "notification_deliveries",
        "gate_decisions",
        "incidents",
        "scan_reports",
        "test_reports",
        "rollbacks",
        "deployments",
        "changes",
        "releases",
        "freezes",
        "windows",
        "environments",
        "services",
    ):
        op.drop_table(name, schema=SCHEMA)
