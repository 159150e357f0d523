"""change enablement: lifecycle columns, approvals, audit history, standard templates, projections

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
SCHEMA = "change"

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    for column in (
        sa.Column("auto_approval_reasons", JSONB, nullable=False, server_default="[]"),
        sa.Column("auto_created", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("evidence", JSONB, nullable=False, server_default="{}"),
        sa.Column("review_summary", sa.Text),
        sa.Column("reviewed_by", sa.String(200)),
        sa.Column("cancel_reason", sa.Text),
        sa.Column("deployment_ref", sa.String(300)),
        sa.Column("submitted_at", TS),
        sa.Column("decided_at", TS),
        sa.Column("started_at", TS),
        sa.Column("completed_at", TS),
        sa.Column("closed_at", TS),
    ):
        op.add_column("changes", column, schema=SCHEMA)
    op.create_index("ix_changes_release_id", "changes", ["release_id"], schema=SCHEMA)
    op.create_index("ix_changes_service_environment", "changes", ["service", "environment"], schema=SCHEMA)
    op.create_index("ix_changes_planned_start", "changes", ["planned_start"], schema=SCHEMA)

    op.create_table(
        "approvals",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column(
            "change_id", sa.String(36), sa.ForeignKey(f"{SCHEMA}.changes.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("by", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(10), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("cab", sa.Boolean, nullable=False),
        sa.Column("policy", sa.Boolean, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.UniqueConstraint("change_id", "by", name="uq_approvals_change_id_by"),
        schema=SCHEMA,
    )
    op.create_index("ix_approvals_change_id", "approvals", ["change_id"], schema=SCHEMA)

    op.create_table(
        "change_history",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("change_id", sa.String(36), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("from_state", sa.String(30)),
        sa.Column("to_state", sa.String(30), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("request_id", sa.String(255)),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("method", sa.String(10)),
        sa.Column("path", sa.String(500)),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("event_type", sa.String(255)),
        sa.Column("event_id", sa.String(255)),
        sa.Column("details", JSONB, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_change_history_change_id", "change_history", ["change_id"], schema=SCHEMA)
    # append-only: the audit trail is never rewritten
    op.execute(
        f"CREATE FUNCTION {SCHEMA}.change_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'change_history is append-only'; END $$"
    )
    op.execute(
        f"CREATE TRIGGER change_history_append_only BEFORE UPDATE OR DELETE ON {SCHEMA}.change_history "
        f"FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.change_history_append_only()"
    )

    op.create_table(
        "standard_templates",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("services", JSONB, nullable=False),
        sa.Column("environments", JSONB, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        schema=SCHEMA,
    )

    # --- projections of other services' events ---
    op.create_table(
        "environments",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("production", sa.Boolean, nullable=False),
        sa.Column("defined_at", TS, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "freezes",
        sa.Column("freeze_id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("start", TS),
        sa.Column("end", TS),
        sa.Column("environments", JSONB, nullable=False),
        sa.Column("services", JSONB, nullable=False),
        sa.Column("reason", sa.String(2000), nullable=False),
        sa.Column("scheduled_at", TS),
        sa.Column("lifted_at", TS),
        schema=SCHEMA,
    )
    for name, extra in (
        (
            "test_results",
            [
                sa.Column("suite", sa.String(300), nullable=False),
                sa.Column("outcome", sa.String(20), nullable=False),
                sa.Column("passed", sa.Integer, nullable=False),
                sa.Column("failed", sa.Integer, nullable=False),
                sa.Column("skipped", sa.Integer, nullable=False),
            ],
        ),
        (
            "scan_results",
            [
                sa.Column("tool", sa.String(200), nullable=False),
                sa.Column("critical", sa.Integer, nullable=False),
                sa.Column("high", sa.Integer, nullable=False),
                sa.Column("medium", sa.Integer, nullable=False),
                sa.Column("low", sa.Integer, nullable=False),
            ],
        ),
    ):
        key = "suite" if name == "test_results" else "tool"
        op.create_table(
            name,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("service", sa.String(200), nullable=False),
            sa.Column("version", sa.String(100), nullable=False),
            sa.Column("commit", sa.String(100), nullable=False),
            *extra,
            sa.Column("reported_at", TS, nullable=False),
            sa.UniqueConstraint("service", "version", "commit", key, name=f"uq_{name}_ref"),
            schema=SCHEMA,
        )
        op.create_index(f"ix_{name}_service_version", name, ["service", "version"], schema=SCHEMA)
        op.create_index(f"ix_{name}_service_commit", name, ["service", "commit"], schema=SCHEMA)
    op.create_table(
        "deployments",
        sa.Column("ref", sa.String(300), primary_key=True),
        sa.Column("service", sa.String(200), nullable=False, index=True),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("version", sa.String(100)),
        sa.Column("commit", sa.String(100)),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("at", TS, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "rollbacks",
        sa.Column("ref", sa.String(300), primary_key=True),
        sa.Column("service", sa.String(200), nullable=False, index=True),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("version", sa.String(100)),
        sa.Column("at", TS, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "releases",
        sa.Column("release_id", sa.String(100), primary_key=True),
        sa.Column("version", sa.String(100), nullable=False, index=True),
        sa.Column("services", JSONB, nullable=False),
        sa.Column("changes", JSONB, nullable=False),
        sa.Column("state", sa.String(30), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in (
        "releases",
        "rollbacks",
        "deployments",
        "scan_results",
        "test_results",
        "freezes",
        "environments",
        "standard_templates",
        "change_history",
        "approvals",
    ):
        op.drop_table(table, schema=SCHEMA)
    op.execute(f"DROP FUNCTION {SCHEMA}.change_history_append_only() CASCADE")
    for index in ("ix_changes_planned_start", "ix_changes_service_environment", "ix_changes_release_id"):
        op.drop_index(index, "changes", schema=SCHEMA)
    for column in (
        "closed_at",
        "completed_at",
        "started_at",
        "decided_at",
        "submitted_at",
        "deployment_ref",
        "cancel_reason",
        "reviewed_by",
        "review_summary",
        "evidence",
        "auto_created",
        "auto_approval_reasons",
    ):
        op.drop_column("changes", column, schema=SCHEMA)
