"""outbox: no NOTIFY trigger; commits wake the relay after they commit (why: drop_outbox_notify_trigger)

Revision ID: 0003
"""

from alembic import op

from greenzone_common.migrations import drop_outbox_notify_trigger, restore_outbox_notify_trigger

revision = "0003"
down_revision = "0002"
SCHEMA = "pipeline"


def upgrade() -> None:
    drop_outbox_notify_trigger(op, SCHEMA)


def downgrade() -> None:
    restore_outbox_notify_trigger(op, SCHEMA)
