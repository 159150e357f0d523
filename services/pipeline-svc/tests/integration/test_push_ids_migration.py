"""Migration 0006: pushes recorded under the old id (``{repository}@{after}``) get the id the sources make now,
so the same push delivered again after the upgrade is still recognised; the downgrade gives the old ids back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine

from greenzone_common.migrations import alembic_config, migrate
from pipeline_svc.config import Settings
from pipeline_svc.main import SPEC
from pipeline_svc.sources import github, gitlab
from pipeline_svc.sources.facts import PushFact

from ..conformance import GITHUB, GITLAB, load

pytestmark = pytest.mark.asyncio


def pushes() -> list[PushFact]:
    facts = [
        *github.map_event("push", load(GITHUB / "push/event.5.json")),
        *gitlab.map_event("Push Hook", load(GITLAB / "official-docs/push.json")),
    ]
    return sorted((f for f in facts if isinstance(f, PushFact)), key=lambda f: f.source)


async def stored_ids(db: asyncpg.Connection) -> list[str]:
    return [r["source_id"] for r in await db.fetch("SELECT source_id FROM pipeline.pushes ORDER BY source")]


async def downgrade(settings: Settings, revision: str) -> None:
    engine = create_async_engine(settings.sqlalchemy_url)
    try:
        async with engine.begin() as conn:

            def run(connection: object) -> None:
                cfg = alembic_config(SPEC.migrations, SPEC.schema)
                cfg.attributes["connection"] = connection
                command.downgrade(cfg, revision)

            await conn.run_sync(run)
    finally:
        await engine.dispose()


async def test_old_push_ids_are_rewritten_to_the_ones_the_sources_make_and_back(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await migrate(settings, SPEC.migrations, SPEC.schema, revision="0005")
    facts = pushes()
    assert len(facts) == 2
    for f in facts:
        after = f.source_id.rpartition("@")[2]
        await db.execute(
            "INSERT INTO pipeline.pushes (id, service, repository, branch, default_branch, on_default_branch, "
            "pushed_at, commits, source, source_id) VALUES ($1, 'svc', $2, $3, $4, true, $5, '[]', $6, $7)",
            uuid.uuid4(),
            f.repository,
            f.branch,
            f.default_branch,
            datetime.now(UTC),
            f.source,
            f"{f.repository}@{after}",  # as recorded before 0006
        )
    old = await stored_ids(db)
    assert all(":refs/" not in i for i in old)

    await migrate(settings, SPEC.migrations, SPEC.schema)
    assert await stored_ids(db) == [f.source_id for f in facts]

    await downgrade(settings, "0005")
    assert await stored_ids(db) == old
