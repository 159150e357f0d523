"""pushes: the id a push is recognised by names its ref (``{repository}:{ref}@{after}``), as the GitHub and GitLab
sources now make it; rows recorded before keep being recognised when the same push is delivered again.

Revision ID: 0006
"""

from alembic import op

revision = "0006"
down_revision = "0005"
SCHEMA = "pipeline"

#: the ref a stored push was made from: ``branch`` is the ref without ``refs/heads/``
REF = "CASE WHEN branch LIKE 'refs/%' THEN branch ELSE 'refs/heads/' || branch END"


def after(source_id: str = "source_id") -> str:
    """The commit a stored push id ends with."""
    return f"substring({source_id} from '@([^@]*)$')"


def upgrade() -> None:
    op.execute(
        f"UPDATE {SCHEMA}.pushes SET source_id = repository || ':' || {REF} || '@' || {after()} "
        f"WHERE source IN ('github', 'gitlab') AND source_id = repository || '@' || {after()}"
    )


def downgrade() -> None:
    # back to ``{repository}@{after}``, except where one commit was pushed to several refs: the old id cannot tell
    # them apart, so those keep the new one (which the old code never makes)
    op.execute(
        f"UPDATE {SCHEMA}.pushes p SET source_id = repository || '@' || {after()} "
        f"WHERE source IN ('github', 'gitlab') AND source_id = repository || ':' || {REF} || '@' || {after()} "
        f"AND NOT EXISTS (SELECT FROM {SCHEMA}.pushes o WHERE o.source = p.source AND o.id <> p.id "
        f"AND o.repository = p.repository AND {after('o.source_id')} = {after('p.source_id')})"
    )
