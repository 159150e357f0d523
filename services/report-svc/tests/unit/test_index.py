"""The per-service index answers exactly as ``formulas.dora`` on generated histories, for any period."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from report_svc.metrics import formulas as f
from report_svc.metrics import index

T = datetime(2026, 1, 1, tzinfo=UTC)
SERVICES = ("api", "web")


def generated(seed: int) -> f.Facts:
    rng = random.Random(seed)
    reports, rollbacks, incidents, commits = [], [], [], []
    changes = {
        "e1": f.ChangeFact("e1", "api", "production", "emergency", True),
        "n1": f.ChangeFact("n1", "web", "production", "normal", True, T + timedelta(days=3), T + timedelta(days=4)),
    }
    for s in SERVICES:
        now = T
        for n in range(60):
            now += timedelta(hours=rng.uniform(0.1, 20))
            sha = f"{s}{n}"
            env = rng.choice(["production", "production", "staging"])
            outcome = "failure" if rng.random() < 0.2 else "success"
            cid = "e1" if rng.random() < 0.05 else None
            reports.append(f.Report(f"{s}-{n}", s, env, now, outcome, sha, f"1.{n}", "github", change_id=cid))
            if rng.random() < 0.4:  # another tool, minutes later, sometimes without the SHA
                later = now + timedelta(minutes=rng.uniform(0, 20))
                reports.append(
                    f.Report(f"{s}-{n}b", s, env, later, "success", rng.choice([sha, None]), f"1.{n}", "cdevents")
                )
            if rng.random() < 0.1:
                rollbacks.append(f.Rollback(s, env, now + timedelta(minutes=rng.uniform(1, 300))))
            if rng.random() < 0.15:
                start = now + timedelta(hours=rng.uniform(-2, 5))
                end = rng.choice([None, start + timedelta(hours=rng.uniform(0.1, 30))])
                incidents.append(
                    f.Incident(f"i-{s}-{n}", s, "production", start, end, version=rng.choice([None, f"1.{n - 2}"]))
                )
            for k in range(rng.randint(0, 3)):
                pushed = now - timedelta(hours=rng.uniform(-3, 10))
                commits.append(
                    f.CommitFact(
                        f"{sha}-{k}",
                        s,
                        pushed - timedelta(hours=rng.uniform(-1, 40)),
                        pushed,
                        rng.choice([None, f"{s}{n + 1}"]),
                    )
                )
    return f.Facts(reports, rollbacks, incidents, commits, changes, {})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_index_matches_the_formulas_for_every_period(seed: int) -> None:
    facts = generated(seed)
    periods = [
        (T, T + timedelta(days=60)),
        (T + timedelta(days=5), T + timedelta(days=12)),
        (T, T + timedelta(hours=6)),
    ]
    for env in ("production", "staging"):
        built = {s: index.build(facts, s, env) for s in SERVICES}
        for start, end in periods:
            for s in SERVICES:
                expected = f.dora(facts, services={s}, environment=env, start=start, end=end)
                assert index.dora([built[s]], start, end) == expected, (s, env, start, end)
            everyone = f.dora(facts, services=None, environment=env, start=start, end=end)
            assert index.dora(built.values(), start, end) == everyone


@pytest.mark.parametrize("seed", [4, 5])
def test_an_index_read_back_from_its_bytes_answers_the_same(seed: int) -> None:
    facts = generated(seed)
    start, end = T + timedelta(days=2), T + timedelta(days=40)
    for env in ("production", "staging"):
        built = [index.build(facts, s, env) for s in SERVICES]
        restored = [index.ServiceIndex.from_bytes(ix.to_bytes()) for ix in built]
        assert [ix.to_bytes() for ix in restored] == [ix.to_bytes() for ix in built]  # NaN != NaN: compare bytes
        assert index.dora(restored, start, end) == f.dora(facts, services=None, environment=env, start=start, end=end)


def test_bytes_of_another_index_format_are_refused() -> None:
    data = bytearray(index.build(generated(1), "api", "production").to_bytes())
    data[0] = index.FORMAT + 1  # the format number leads, little-endian

    with pytest.raises(index.StaleFormat):
        index.ServiceIndex.from_bytes(bytes(data))


def test_microseconds_are_exact_where_a_float_timestamp_rounds() -> None:
    at = datetime(2026, 3, 2, 10, 0, 0, 999_999, tzinfo=UTC)

    assert index.micros(at) == 1_772_445_600_999_999
    assert index.micros(at + timedelta(microseconds=1)) == index.micros(at) + 1


def test_services_built_together_get_the_index_of_their_own_facts() -> None:
    from report_svc.dora.service import _build_each

    facts = generated(6)
    together = _build_each(facts, list(SERVICES), "production")
    for s in SERVICES:
        own = f.Facts(
            [r for r in facts.reports if r.service == s],
            [b for b in facts.rollbacks if b.service == s],
            [i for i in facts.incidents if i.service == s],
            [c for c in facts.commits if c.service == s],
            {k: c for k, c in facts.changes.items() if c.service == s},
            facts.release_changes,
        )
        assert together[s].to_bytes() == index.build(own, s, "production").to_bytes()
