"""Speed is measured in benchmarks/, never asserted in a test: a time bound in a test is a correctness
bound (a deadline honoured, not some much longer timeout) and must hold with a wide margin on a busy
2-core machine. This walks every test for elapsed-time assertions and refuses tight ones."""

from __future__ import annotations

import re

from tests.conftest import ROOT

#: ``time.monotonic() - t < 3.0``, ``elapsed < 10``, ``perf_counter() - t0 < 0.5``
BOUND = re.compile(r"(?:(?:monotonic|perf_counter|time)\(\)\s*-\s*\w+|elapsed\w*)\s*<=?\s*([0-9.]+)")
#: seconds: the least a test may allow for anything it times
FLOOR = 10.0


def test_no_test_times_anything_against_a_tight_bound():
    tight = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if path.name == "test_time_bounds.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for m in BOUND.finditer(line):
                if float(m.group(1)) < FLOOR:
                    tight.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not tight, "time bounds under 10 s (move speed into benchmarks/):\n" + "\n".join(tight)


def test_the_walk_finds_bounds():
    assert BOUND.search("assert time.monotonic() - t < 3.0").group(1) == "3.0"
    assert BOUND.search("assert elapsed < 10").group(1) == "10"
    assert BOUND.search("assert time.perf_counter() - t0 < 0.5").group(1) == "0.5"
