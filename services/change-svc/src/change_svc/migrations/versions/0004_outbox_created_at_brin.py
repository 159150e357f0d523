"""outbox: the created_at index as BRIN (why: outbox_created_at_brin)

Revision ID: 0004
"""

from alembic import op

from greenzone_common.migrations import outbox_created_at_brin, outbox_created_at_btree

revision = "0004"
down_revision = "0003"
SCHEMA = "change"


def upgrade() -> None:
    outbox_created_at_brin(op, SCHEMA)


def downgrade() -> None:
    outbox_created_at_btree(op, SCHEMA)
