"""runs and outbox: one unique index fewer each (why: Run and outbox_id_not_unique)

- runs: no unique constraint on (source, kind, run_key); the primary key is the uuid5 of those three
  (``facts.service.fact_id``), so it holds the same uniqueness, and the upsert now names it;
- outbox: no unique index on id.

Revision ID: 0005
"""

from alembic import op

from greenzone_common.migrations import outbox_id_not_unique, outbox_id_unique

revision = "0005"
down_revision = "0004"
SCHEMA = "pipeline"


def upgrade() -> None:
    op.drop_constraint("uq_runs_source", "runs", schema=SCHEMA, type_="unique")
    outbox_id_not_unique(op, SCHEMA)


def downgrade() -> None:
    outbox_id_unique(op, SCHEMA)
    op.create_unique_constraint("uq_runs_source", "runs", ["source", "kind", "run_key"], schema=SCHEMA)
