"""pipeline schema: raw events, normalised facts and the catalogue projection

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
SCHEMA = "pipeline"


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("digest", sa.Text(), nullable=True),
        sa.Column("commit", sa.String(length=64), nullable=True),
        sa.Column("purl", sa.Text(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("raw_event_id", sa.UUID(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifacts")),
        sa.UniqueConstraint("source", "source_id", name=op.f("uq_artifacts_source")),
        schema=SCHEMA,
    )
    op.create_index(op.f("ix_pipeline_artifacts_service"), "artifacts", ["service"], unique=False, schema=SCHEMA)
    op.create_table(
        "catalogue_keys",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key", name=op.f("pk_catalogue_keys")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_pipeline_catalogue_keys_service"), "catalogue_keys", ["service"], unique=False, schema=SCHEMA
    )
    op.create_table(
        "catalogue_services",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("repositories", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("artifacts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("team", sa.String(length=200), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_catalogue_services")),
        schema=SCHEMA,
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=True),
        sa.Column("commit", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("change_id", sa.String(length=100), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("rolled_back", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("raw_event_id", sa.UUID(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
        sa.UniqueConstraint("source", "source_id", "outcome", name=op.f("uq_deployments_source")),
        schema=SCHEMA,
    )
    op.create_index("ix_deployments_at", "deployments", ["at", "id"], unique=False, schema=SCHEMA)
    op.create_index(
        "ix_deployments_service_env_at",
        "deployments",
        ["service", "environment", "at"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_table(
        "evidence",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=True),
        sa.Column("commit", sa.String(length=64), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("critical", sa.Integer(), nullable=False),
        sa.Column("high", sa.Integer(), nullable=False),
        sa.Column("medium", sa.Integer(), nullable=False),
        sa.Column("low", sa.Integer(), nullable=False),
        sa.Column("note", sa.Integer(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("raw_event_id", sa.UUID(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence")),
        sa.UniqueConstraint("source", "source_id", name=op.f("uq_evidence_source")),
        schema=SCHEMA,
    )
    op.create_index("ix_evidence_reported", "evidence", ["reported_at", "id"], unique=False, schema=SCHEMA)
    op.create_index(
        "ix_evidence_service_version",
        "evidence",
        ["service", "version", "reported_at"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_key", sa.Text(), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("severity", sa.String(length=40), nullable=True),
        sa.Column("version", sa.String(length=200), nullable=True),
        sa.Column("commit", sa.String(length=64), nullable=True),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("reported_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.UniqueConstraint("source", "source_key", name=op.f("uq_incidents_source")),
        schema=SCHEMA,
    )
    op.create_index("ix_incidents_created", "incidents", ["created_at", "id"], unique=False, schema=SCHEMA)
    op.create_index("ix_incidents_service", "incidents", ["service", "detected_at"], unique=False, schema=SCHEMA)
    op.create_table(
        "merged_changes",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("repository", sa.Text(), nullable=False),
        sa.Column("change_id", sa.Text(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("commit", sa.String(length=64), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("raw_event_id", sa.UUID(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merged_changes")),
        sa.UniqueConstraint("source", "repository", "change_id", name=op.f("uq_merged_changes_source")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_pipeline_merged_changes_service"), "merged_changes", ["service"], unique=False, schema=SCHEMA
    )
    op.create_table(
        "pushes",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("repository", sa.Text(), nullable=False),
        sa.Column("branch", sa.Text(), nullable=False),
        sa.Column("default_branch", sa.Text(), nullable=True),
        sa.Column("on_default_branch", sa.Boolean(), nullable=False),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("commits", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("raw_event_id", sa.UUID(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pushes")),
        sa.UniqueConstraint("source", "source_id", name=op.f("uq_pushes_source")),
        schema=SCHEMA,
    )
    op.create_index(op.f("ix_pipeline_pushes_service"), "pushes", ["service"], unique=False, schema=SCHEMA)
    op.create_table(
        "raw_events",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("delivery_key", sa.Text(), nullable=False),
        sa.Column("event_type", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raw_events")),
        sa.UniqueConstraint("origin", "delivery_key", name=op.f("uq_raw_events_origin")),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_raw_events_lookup", "raw_events", ["origin", "event_type", "subject"], unique=False, schema=SCHEMA
    )
    op.create_index("ix_raw_events_received_at", "raw_events", ["received_at"], unique=False, schema=SCHEMA)
    op.create_table(
        "rollbacks",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=True),
        sa.Column("commit", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("raw_event_id", sa.UUID(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollbacks")),
        sa.UniqueConstraint("source", "source_id", name=op.f("uq_rollbacks_source")),
        schema=SCHEMA,
    )
    op.create_index(op.f("ix_pipeline_rollbacks_service"), "rollbacks", ["service"], unique=False, schema=SCHEMA)
    op.create_table(
        "runs",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("run_key", sa.Text(), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("queue_s", sa.Float(), nullable=True),
        sa.Column("repository", sa.Text(), nullable=True),
        sa.Column("branch", sa.Text(), nullable=True),
        sa.Column("commit", sa.String(length=64), nullable=True),
        sa.Column("version", sa.String(length=200), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("raw_event_id", sa.UUID(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("source", "kind", "run_key", name=op.f("uq_runs_source")),
        schema=SCHEMA,
    )
    op.create_index("ix_runs_service_finished", "runs", ["service", "finished_at"], unique=False, schema=SCHEMA)
    op.create_index("ix_runs_updated", "runs", ["updated_at", "id"], unique=False, schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("runs", schema=SCHEMA)
    op.drop_table("rollbacks", schema=SCHEMA)
    op.drop_table("raw_events", schema=SCHEMA)
    op.drop_table("pushes", schema=SCHEMA)
    op.drop_table("merged_changes", schema=SCHEMA)
    op.drop_table("incidents", schema=SCHEMA)
    op.drop_table("evidence", schema=SCHEMA)
    op.drop_table("deployments", schema=SCHEMA)
    op.drop_table("catalogue_services", schema=SCHEMA)
    op.drop_table("catalogue_keys", schema=SCHEMA)
    op.drop_table("artifacts", schema=SCHEMA)
