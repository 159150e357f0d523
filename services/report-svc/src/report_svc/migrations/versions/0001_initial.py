"""report schema: plumbing and the change projections

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from greenzone_common.migrations import create_plumbing, drop_plumbing

revision = "0001"
down_revision = None
SCHEMA = "report"


def upgrade() -> None:
    create_plumbing(op, SCHEMA)
    op.create_table(
        "changes",
        sa.Column("change_id", sa.String(36), primary_key=True),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("service", sa.String(200), nullable=False, index=True),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("state", sa.String(30), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100)),
        sa.Column("risk_level", sa.String(10)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "change_events",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("change_id", sa.String(36), nullable=False, index=True),
        sa.Column("ce_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("change_events", schema=SCHEMA)
    op.drop_table("changes", schema=SCHEMA)
    drop_plumbing(op, SCHEMA)
