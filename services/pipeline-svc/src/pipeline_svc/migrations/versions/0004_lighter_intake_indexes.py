"""raw_events and outbox: indexes that cost each accepted event less (see RawEvent and outbox_created_at_brin)

- raw_events (origin, event_type, subject) → a partial index on subject for CDEvents change.created only, the one
  query that looks raw events up (``facts.service.change_created_at``);
- raw_events received_at and outbox created_at → BRIN (both are appended in time order).

Revision ID: 0004
"""

from alembic import op

from greenzone_common.migrations import outbox_created_at_brin, outbox_created_at_btree

revision = "0004"
down_revision = "0003"
SCHEMA = "pipeline"


def upgrade() -> None:
    op.drop_index("ix_raw_events_lookup", table_name="raw_events", schema=SCHEMA)
    op.create_index(
        "ix_raw_events_change_created",
        "raw_events",
        ["subject"],
        schema=SCHEMA,
        postgresql_where="origin = 'cloudevents' AND event_type LIKE 'dev.cdevents.change.created.%'",
    )
    op.drop_index("ix_raw_events_received_at", table_name="raw_events", schema=SCHEMA)
    op.create_index("ix_raw_events_received_at", "raw_events", ["received_at"], schema=SCHEMA, postgresql_using="brin")
    outbox_created_at_brin(op, SCHEMA)


def downgrade() -> None:
    outbox_created_at_btree(op, SCHEMA)
    op.drop_index("ix_raw_events_received_at", table_name="raw_events", schema=SCHEMA)
    op.create_index("ix_raw_events_received_at", "raw_events", ["received_at"], schema=SCHEMA)
    op.drop_index("ix_raw_events_change_created", table_name="raw_events", schema=SCHEMA)
    op.create_index("ix_raw_events_lookup", "raw_events", ["origin", "event_type", "subject"], schema=SCHEMA)
