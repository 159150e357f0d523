"""pipeline schema: outbox, inbox and idempotency keys

Revision ID: 0001
"""

from alembic import op

from greenzone_common.migrations import create_plumbing, drop_plumbing

revision = "0001"
down_revision = None
SCHEMA = "pipeline"


def upgrade() -> None:
    create_plumbing(op, SCHEMA)


def downgrade() -> None:
    drop_plumbing(op, SCHEMA)
