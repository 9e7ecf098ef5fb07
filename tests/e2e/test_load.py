"""50 create jobs submitted at once to `beatsync serve` (benchmarks/load.py): 50 terminal jobs, each
with exactly one outcome, none lost or duplicated."""

from __future__ import annotations

from benchmarks.load import run_load


def test_fifty_concurrent_jobs_all_end_exactly_once():
    s = run_load(jobs=50, workers=2, concurrency=50, timeout=400)
    print(f"\nload: {s}")
    assert s["accepted"] == s["distinct_ids"] == s["listed"] == s["terminal"] == 50
    assert s["lost"] == 0 and s["completed"] == 50 and s["outputs"] == 50
    assert s["outcomes_per_job"] == [1]
