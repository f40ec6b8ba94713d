"""The runner's benchmark statistics on fixed samples (never on wall-clock): the p50's bootstrap interval, when
timing stops, and when a run counts as disturbed (other processes on the CPU, throttling)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("runner", ROOT / "benchmarks" / "runner.py")
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)

# Latencies of a 2.0 ms model with a slow tail, as timing gives them (fixed, not measured).
SAMPLES = np.concatenate([2.0 + 0.01 * np.sin(np.arange(300)), [3.5, 4.0, 6.0]])


def test_p50_interval_is_seeded_contains_the_median_and_narrows_with_more_samples():
    lo, hi = runner.p50_ci(SAMPLES)
    assert (lo, hi) == runner.p50_ci(SAMPLES)  # seeded: same samples, same interval
    assert lo <= np.median(SAMPLES) <= hi and hi - lo < 0.01
    wide = runner.p50_ci(SAMPLES[::10])
    assert wide[1] - wide[0] > hi - lo
    assert runner.p50_ci([5.0] * 20) == (5.0, 5.0) and runner.p50_ci([3.0]) == (3.0, 3.0)
    spread = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    assert runner.ci_half_width(spread, runner.p50_ci(spread)) > 0.02


def test_timing_stops_when_the_interval_is_tight_or_at_the_time_limit():
    def never():  # must not be called: the decisions below come from the given samples alone
        raise AssertionError("timed again")

    ms, interval, stop = runner.time_until_stable(never, SAMPLES, 0.02, 0.0, 0.0)
    assert stop == "ci" and len(ms) == len(SAMPLES) and runner.ci_half_width(ms, interval) <= 0.02
    noisy = np.array([1.0, 3.0, 2.0, 5.0, 1.5, 4.0, 2.5, 6.0])
    ms, interval, stop = runner.time_until_stable(never, noisy, 0.02, 0.0, 0.0)  # no time left
    assert stop == "time-limit" and runner.ci_half_width(ms, interval) > 0.02
    assert runner.time_until_stable(never, noisy, 0.0, 100.0, 0.0)[2] == "runs"  # --ci-target 0: as asked


def test_other_processes_cpu_use_is_the_machines_minus_our_own():
    before = {"stat": "cpu  1000 0 500 9000 100 0 0 0 0 0\ncpu0 ...", "self_s": 10.0, "clock": 50.0}
    # 2 s later: 600 busy ticks (100 Hz) = 6 core-seconds, 2 of them ours -> others kept 2 cores busy
    after = {"stat": "cpu  1500 0 600 9100 150 0 0 0 0 0\ncpu0 ...", "self_s": 12.0, "clock": 52.0}
    assert runner.other_cores(before, after, hz=100) == pytest.approx(2.0)
    assert runner.other_cores(before, {**after, "self_s": 16.0}, hz=100) == 0.0  # never negative
    assert runner.other_cores({**before, "stat": None}, after, hz=100) is None  # no /proc/stat (macOS)


def test_a_run_is_disturbed_by_other_processes_or_throttling():
    assert runner.disturbed(0.1, False, 0.25) == [] and runner.disturbed(None, None, 0.25) == []
    assert runner.disturbed(1.2, None, 0.25) == ["other processes used 1.20 cores"]
    assert runner.disturbed(0.0, True, 0.25) == ["the device throttled"]
