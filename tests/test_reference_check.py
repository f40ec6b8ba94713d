"""The runner-vs-tool check (`make bench-check`): its ratio logic on scripted timings, its exit codes, and one
real run on a tiny model. No timing is asserted: the scripted sides return fixed p50s."""
from __future__ import annotations

import itertools

import pytest

from mobilenet_edge.benchmarks import reference_check as rc


def _scripted(monkeypatch, runner_ms, reference_ms):
    """Replace both measurements by fixed sequences; record the order in which the sides ran."""
    calls = []
    runner, reference = iter(runner_ms), iter(reference_ms)

    def fake_runner(python, model, threads, warmup, runs, timeout):
        calls.append("runner")
        return next(runner), "litert-compiled"

    def fake_reference(python, model, threads, warmup, runs, timeout):
        calls.append("reference")
        return next(reference)
    monkeypatch.setattr(rc, "runner_p50", fake_runner)
    monkeypatch.setattr(rc, "reference_p50", fake_reference)
    return calls


def test_sides_alternate_abba_and_agreeing_pairs_stop_after_the_rounds(monkeypatch, tmp_path):
    calls = _scripted(monkeypatch, itertools.repeat(1.02), itertools.repeat(1.00))
    (c,) = rc.compare([tmp_path / "m.tflite"], threads=(1,), rounds=3, max_rounds=6)
    assert calls == ["runner", "reference", "reference", "runner", "runner", "reference"]
    assert c.ratio == pytest.approx(1.02) and c.passed and len(c.runner_ms) == 3


def test_a_pair_outside_the_tolerance_gets_more_rounds_then_fails(monkeypatch, tmp_path):
    _scripted(monkeypatch, itertools.repeat(1.20), itertools.repeat(1.00))
    (c,) = rc.compare([tmp_path / "m.onnx"], threads=(2,), rounds=3, max_rounds=6)
    assert len(c.runner_ms) == len(c.reference_ms) == 6
    assert not c.passed and "SLOWER" in rc.table([c])


def test_extra_rounds_can_settle_a_noisy_pair(monkeypatch, tmp_path):
    # one disturbed round: the medians over 4 rounds agree again
    _scripted(monkeypatch, [1.5, 1.0, 1.0, 1.01], itertools.repeat(1.0))
    (c,) = rc.compare([tmp_path / "m.onnx"], threads=(1,), rounds=2, max_rounds=6)
    assert len(c.runner_ms) == 3 and c.passed


def test_a_difference_within_the_tools_print_resolution_passes(monkeypatch, tmp_path):
    # 0.012 vs 0.010 ms is a 20 % ratio, but the LiteRT tool prints 0.01 ms steps
    _scripted(monkeypatch, itertools.repeat(0.012), itertools.repeat(0.010))
    (c,) = rc.compare([tmp_path / "m.tflite"], threads=(1,), rounds=1, max_rounds=2)
    assert abs(c.ratio - 1) > c.tolerance and c.passed
    assert "ok (within print resolution)" in rc.table([c])


def test_a_faster_runner_is_suspicious_not_ok(monkeypatch, tmp_path):
    _scripted(monkeypatch, itertools.repeat(0.5), itertools.repeat(1.0))
    (c,) = rc.compare([tmp_path / "m.onnx"], threads=(1,), rounds=1, max_rounds=1)
    assert not c.passed and "FASTER (suspicious)" in rc.table([c])


def test_exit_codes(monkeypatch, tmp_path, capsys):
    assert rc.main([str(tmp_path / "missing.tflite")]) == 2
    assert "error: expected a variant folder or a .tflite/.onnx file" in capsys.readouterr().err
    assert rc.main([str(tmp_path)]) == 2  # a folder without models
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    assert rc.main([str(model), "--rounds", "0"]) == 2
    _scripted(monkeypatch, itertools.repeat(1.3), itertools.repeat(1.0))
    assert rc.main([str(model), "--threads", "1", "--rounds", "1", "--max-rounds", "1", "--quiet"]) == 1
    assert "1 of 1 ratios off by more than 5%" in capsys.readouterr().err
    _scripted(monkeypatch, itertools.repeat(1.0), itertools.repeat(1.0))
    assert rc.main([str(model), "--threads", "1", "--rounds", "1", "--quiet"]) == 0


@pytest.mark.slow
def test_both_sides_measure_a_real_model(tiny_export):
    """One round per side on the tiny int8 files: both tools run and give positive p50s (no verdict asserted)."""
    models = [tiny_export.variant_dir / f"{tiny_export.variant_dir.name}_int8.{ext}" for ext in ("tflite", "onnx")]
    comparisons = rc.compare(models, threads=(1,), warmup=1, runs=5, rounds=1, max_rounds=1)
    assert [c.reference for c in comparisons] == ["benchmark_litert_model", "onnxruntime loop"]
    assert all(c.runner_p50 > 0 and c.reference_p50 > 0 for c in comparisons)
