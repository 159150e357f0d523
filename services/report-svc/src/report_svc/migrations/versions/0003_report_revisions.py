"""report schema: release report revisions and the releases whose stored report a late fact made stale

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"

STATEMENTS = [
    "ALTER TABLE report.release_reports ADD COLUMN revision INTEGER NOT NULL DEFAULT 1",
    # written in the transaction of the late fact, emptied by the refresher in the transaction of the new revision
    """CREATE TABLE report.report_refresh (
    release_id VARCHAR(100) NOT NULL,
    requested_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    CONSTRAINT pk_report_refresh PRIMARY KEY (release_id)
)""",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE report.report_refresh")
    op.execute("ALTER TABLE report.release_reports DROP COLUMN revision")
