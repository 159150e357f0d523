"""report schema: the per-service DORA indexes as stored bytes, so a restart reads them instead of rebuilding

Revision ID: 0004
"""

from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.execute(
        """CREATE TABLE report.dora_indexes (
    service VARCHAR(200) NOT NULL,
    environment VARCHAR(100) NOT NULL,
    version BIGINT NOT NULL,
    format SMALLINT NOT NULL,
    body BYTEA NOT NULL,
    built_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    CONSTRAINT pk_dora_indexes PRIMARY KEY (service, environment)
)"""
    )
    # already compact (flat arrays): no TOAST compression to undo on every read
    op.execute("ALTER TABLE report.dora_indexes ALTER COLUMN body SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("DROP TABLE report.dora_indexes")
