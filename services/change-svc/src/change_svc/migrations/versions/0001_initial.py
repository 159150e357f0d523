"""change schema: plumbing and the changes table

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from greenzone_common.migrations import create_plumbing, drop_plumbing

revision = "0001"
down_revision = None
SCHEMA = "change"


def upgrade() -> None:
    create_plumbing(op, SCHEMA)
    op.execute(sa.schema.CreateSequence(sa.Sequence("change_number_seq", schema=SCHEMA)))
    op.create_table(
        "changes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "number",
            sa.Integer,
            nullable=False,
            unique=True,
            server_default=sa.text(f"nextval('{SCHEMA}.change_number_seq')"),
        ),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("service", sa.String(200), nullable=False, index=True),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("state", sa.String(30), nullable=False, index=True),
        sa.Column("outcome", sa.String(30)),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("risk", JSONB, nullable=False),
        sa.Column("required_approvals", sa.Integer, nullable=False),
        sa.Column("auto_approved", sa.Boolean, nullable=False),
        sa.Column("planned_start", sa.DateTime(timezone=True)),
        sa.Column("planned_end", sa.DateTime(timezone=True)),
        sa.Column("template_id", sa.String(36)),
        sa.Column("release_id", sa.String(36)),
        sa.Column("version", sa.String(100)),
        sa.Column("commits", JSONB, nullable=False),
        sa.Column("review_due", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("changes", schema=SCHEMA)
    op.execute(f"DROP SEQUENCE {SCHEMA}.change_number_seq")
    drop_plumbing(op, SCHEMA)
