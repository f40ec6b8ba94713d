"""BUDGET: trials run cheapest first and stop at the first within budget; none within -> best kept, exit 1."""
import shutil

import numpy as np
import pytest

from mobilenet_edge.pipeline import budget
from mobilenet_edge.pipeline.budget.trials import onnx_trials, tflite_trials


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The alpha=0.25 reference checkpoint at 32 px, 64 held-out test images, and a random (bad) twin."""
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.build import build_model
    from mobilenet_edge.pipeline.config import Variant
    from mobilenet_edge.pipeline.config import ValidationConfig

    model = build_model(Variant(0.25, 32, "fashion-mnist", "reference"), 10)
    bad = build_model(Variant(0.25, 32, "fashion-mnist", "random"), 10)
    data = budget.held_out(model, resolve_task("fashion-mnist"), 32, "v1", ValidationConfig(limit=64))
    return model, bad, data, tmp_path_factory.mktemp("budget")


def _fp32(model, path):
    from mobilenet_edge.pipeline.convert.tflite import convert_tflite

    return lambda: convert_tflite(model, "fp32", path)


def test_search_stops_at_the_first_trial_within_budget(tiny):
    model, bad, data, folder = tiny
    final = folder / "v_int8.tflite"
    trials = [("int8", {"who": "random weights"}, _fp32(bad, final)),
              ("int8_skip", {}, lambda: "cannot run here"),
              ("int8_good", {"who": "float file"}, _fp32(model, folder / "v_int8_good.tflite")),
              ("int8_never", {}, lambda: pytest.fail("a trial ran after the budget was met"))]
    skipped = []
    done, made, chosen = budget.search(trials, data, 0.0, skipped=skipped)
    assert [t.name for t in done] == ["int8", "int8_good"] and chosen == 1
    assert not done[0].meets and done[0].drop_points > 10 and done[1].meets and done[1].drop_points <= 0
    assert skipped == ["int8_skip: cannot run here"]

    def promote(i):
        shutil.copyfile(made[i].path, final)
        return made[i].__class__(**{**made[i].__dict__, "path": final})
    good_bytes = made[1].path.read_bytes()
    result = budget.finish(done, made, chosen, final, promote, 0.0, "top1_drop_points", len(data.pixels), skipped)
    assert result.met and result.chosen.name == "int8_good" and result.kept is None
    assert final.read_bytes() == good_bytes
    assert not (folder / "v_int8_good.tflite").exists()  # the trial's own copy is gone, its bytes are the int8 file
    record = dict(result.artifacts[0].extra)["budget"]
    assert [t["name"] for t in record["trials"]] == ["int8", "int8_good"] and record["chosen"] == "int8_good"
    assert "met by int8_good" in budget.summary_line(record)


def test_no_trial_within_budget_keeps_the_best_and_exits_1(tiny):
    from mobilenet_edge.pipeline import show

    model, bad, data, folder = tiny
    final = folder / "w_int8.tflite"
    trials = [("int8", {}, _fp32(bad, final)), ("int8_better", {}, _fp32(model, folder / "w_int8_better.tflite"))]
    done, made, chosen = budget.search(trials, data, -1.0)  # no file can gain a point on every image
    assert chosen is None and len(done) == 2
    result = budget.finish(done, made, chosen, final, None, -1.0, "top1_drop_points", len(data.pixels), [])
    assert not result.met and result.kept.name == "int8_better"
    assert final.exists() and (folder / "w_int8_better.tflite").exists()  # plain int8 stays; best kept by name
    assert [a.path.name for a in result.artifacts] == ["w_int8.tflite", "w_int8_better.tflite"]
    text, met = show.budgets(result.artifacts)
    assert met is False
    last = text.strip().splitlines()[-1]
    assert last.startswith("no int8 file within BUDGET=-1 pt") and "best kept as w_int8_better.tflite" in last


def test_trial_order_is_cheapest_first(tiny):
    """Listing the trials runs nothing (they are made lazily)."""
    from mobilenet_edge.calibration.representative import CalibrationSet
    from mobilenet_edge.pipeline.config import QuantConfig

    model, _, _, folder = tiny
    folder = folder / "order"
    folder.mkdir()
    calib = CalibrationSet.from_samples(np.zeros((10, 32, 32, 3), np.float32), "test", "x", 0, 0)
    names = [n for n, _, _ in tflite_trials(model, QuantConfig(budget=0.5), folder, "v", calib, None, None, 1)]
    assert names == ["int8", "int8_n40", "int8_16x8", "int8_keep1", "int8_keep2", "int8_keep3", "int8_keep5",
                     "int8_keep8"]
    names = [n for n, _, _ in onnx_trials(folder / "x.onnx", folder, "v", calib, None, True, None, 1)]
    assert names == ["int8", "int8_n40", "int8_percentile", "int8_entropy", "int8_16x8"]
    assert not list(folder.glob("v_*"))
