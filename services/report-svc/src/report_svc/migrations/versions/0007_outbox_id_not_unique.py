"""outbox: no unique index on id (why: outbox_id_not_unique)

Revision ID: 0007
"""

from alembic import op

from greenzone_common.migrations import outbox_id_not_unique, outbox_id_unique

revision = "0007"
down_revision = "0006"
SCHEMA = "report"


def upgrade() -> None:
    outbox_id_not_unique(op, SCHEMA)


def downgrade() -> None:
    outbox_id_unique(op, SCHEMA)
