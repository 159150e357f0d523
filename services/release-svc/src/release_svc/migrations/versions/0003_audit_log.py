"""release schema: the append-only audit trail of every mutation

Revision ID: 0003
"""

from alembic import op

from greenzone_common.audit import create_audit_log, drop_audit_log

revision = "0003"
down_revision = "0002"
SCHEMA = "release"


def upgrade() -> None:
    create_audit_log(op, SCHEMA)


def downgrade() -> None:
    drop_audit_log(op, SCHEMA)
