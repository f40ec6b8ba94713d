"""Stage 2: the cost table reproduces the paper's figures and describes the model Keras actually builds."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT
from pipeline.cost import PAPER_SHARES, cost_table, format_table, mobilenet_v1_layers, write_cost
from pipeline.errors import PipelineError

# Paper Table 6 (width multiplier) and Table 7 (resolution): (alpha, RES) -> (M Mult-Adds, M params).
# 1.0-224 heads both tables, so it appears twice.
PAPER_VARIANTS = {
    "table6-1.0-224": (1.0, 224, 569, 4.2),
    "table6-0.75-224": (0.75, 224, 325, 2.6),
    "table6-0.5-224": (0.5, 224, 149, 1.3),
    "table6-0.25-224": (0.25, 224, 41, 0.5),
    "table7-1.0-224": (1.0, 224, 569, 4.2),
    "table7-1.0-192": (1.0, 192, 418, 4.2),
    "table7-1.0-160": (1.0, 160, 290, 4.2),
    "table7-1.0-128": (1.0, 128, 186, 4.2),
}


@pytest.mark.parametrize("alpha, res, mult_adds, params", PAPER_VARIANTS.values(), ids=PAPER_VARIANTS.keys())
def test_paper_variants(alpha, res, mult_adds, params):
    report = cost_table(alpha, res)
    assert report.total_mult_adds / 1e6 == pytest.approx(mult_adds, rel=0.02)
    # The paper prints parameters to 0.1 M: 0.25-224 has 0.46 M, printed as 0.5 (7 % off, yet the same
    # figure to the paper's precision). So: within 2 % or within half of the last printed digit.
    assert abs(report.total_params / 1e6 - params) <= max(0.02 * params, 0.05)


def test_table2_shares():
    shares = {s.group: s for s in cost_table(1.0, 224).shares}
    assert set(shares) == set(PAPER_SHARES)
    for group, (paper_mult_adds, paper_params) in PAPER_SHARES.items():
        assert shares[group].params_pct == pytest.approx(paper_params, abs=0.1)
        if group != "Conv 3x3":
            assert shares[group].mult_adds_pct == pytest.approx(paper_mult_adds, abs=0.1)
    # The paper prints 1.19 % for the first conv: 10.84 M / 568.7 M is 1.91 %, and only 1.91 makes the
    # paper's own column add up to 100 %.
    assert shares["Conv 3x3"].mult_adds_pct == pytest.approx(1.91, abs=0.01)
    assert sum(m for m, _ in PAPER_SHARES.values()) - 1.19 + 1.91 == pytest.approx(100, abs=0.02)
    assert sum(s.mult_adds_pct for s in shares.values()) == pytest.approx(100)
    assert sum(s.params_pct for s in shares.values()) == pytest.approx(100)


def test_standard_conv_comparison():
    report = cost_table(1.0, 224)
    sc = report.standard_conv
    assert sc.total_mult_adds / 1e6 == pytest.approx(4866, rel=0.02)  # "Conv MobileNet", paper Table 4
    assert sc.total_params / 1e6 == pytest.approx(29.3, rel=0.02)
    assert len(sc.blocks) == 13
    for block in sc.blocks:
        assert block.ratio == pytest.approx(1 / block.out_channels + 1 / 9)
    assert sc.separable_ratio == pytest.approx(sc.theory)
    # The whole network also carries the first conv and the FC layer, which are not replaced.
    assert sc.ratio == pytest.approx(sc.theory, rel=0.03)
    assert 8 <= 1 / sc.ratio <= 9


def test_table1_rows_at_224():
    rows = mobilenet_v1_layers(1.0, 224)
    assert len(rows) == 1 + 2 * 13 + 3
    first, dw13, pool, fc, softmax = rows[0], rows[25], rows[-3], rows[-2], rows[-1]
    assert (first.type, first.stride, first.filter_shape, first.input_size) == ("Conv", 2, "3x3x3x32", "224x224x3")
    assert (rows[1].type, rows[1].filter_shape, rows[1].input_size) == ("Conv dw", "3x3x32 dw", "112x112x32")
    assert (rows[2].type, rows[2].filter_shape) == ("Conv 1x1", "1x1x32x64")
    assert (dw13.type, dw13.stride, dw13.input_size) == ("Conv dw", 1, "7x7x1024")  # the paper prints s2 here
    assert (pool.type, pool.filter_shape, pool.input_size) == ("Avg Pool", "Pool 7x7", "7x7x1024")
    assert (fc.type, fc.filter_shape, fc.params) == ("FC", "1024x1000", 1024 * 1000)
    assert softmax.type == "Softmax" and softmax.mult_adds == 0
    assert [r.stride for r in rows if r.type == "Conv dw"] == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]


def test_json_and_printed_table(tmp_path):
    report = cost_table(0.75, 160, 10)
    path = write_cost(report, tmp_path / "cost.json")
    data = json.loads(path.read_text())
    for key in ("alpha", "resolution", "classes", "total_mult_adds", "total_params", "keras_params",
                "layers", "shares", "standard_conv", "notes"):
        assert key in data
    assert (data["alpha"], data["resolution"], data["classes"]) == (0.75, 160, 10)
    assert data["total_mult_adds"] == sum(row["mult_adds"] for row in data["layers"])
    assert {"total_mult_adds", "total_params", "ratio"} <= set(data["standard_conv"])
    assert data["layers"][0]["filter_shape"] == "3x3x3x24"

    text = format_table(cost_table(1.0, 224))
    for expected in ("Conv / s2", "Conv dw / s2", "1x1x1024x1024", "Pool 7x7", "1024x1000", "568.74",
                     "4,209,088", "Table 2", "94.86%", "1/N+1/Dk^2", "8.6x fewer"):
        assert expected in text


@pytest.mark.parametrize("alpha, res, classes, message", [
    (0, 224, 1000, r"expected alpha in \(0, 1\]"),
    (1.5, 224, 1000, r"expected alpha in \(0, 1\]"),
    (0.02, 224, 1000, "keeps a channel"),
    (0.5, 31, 1000, "expected resolution >= 32"),
    (0.5, 224, 0, "expected classes"),
])
def test_bad_input(alpha, res, classes, message):
    with pytest.raises(PipelineError, match=message):
        cost_table(alpha, res, classes)


def test_cost_needs_no_tensorflow():
    code = ("import sys, pipeline.cost; "
            "sys.exit(any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


# Against real Keras models (weights=None: no download, no training), each built once per session.
KERAS_VARIANTS = [(0.25, 32, 10), (0.75, 160, 1000), (0.6, 33, 10), (0.6, 97, 7)]


@pytest.fixture(scope="session")
def keras_models():
    import keras

    return {(a, r, c): keras.applications.MobileNet(input_shape=(r, r, 3), alpha=a, weights=None, classes=c)
            for a, r, c in KERAS_VARIANTS}


@pytest.mark.parametrize("alpha, res, classes", KERAS_VARIANTS)
def test_keras_param_count(keras_models, alpha, res, classes):
    model = keras_models[(alpha, res, classes)]
    assert cost_table(alpha, res, classes).keras_params == model.count_params()


@pytest.mark.parametrize("alpha, res, classes", KERAS_VARIANTS)
def test_layers_match_keras(keras_models, alpha, res, classes):
    """Output shapes (odd sides, truncated channels) and parameters of every conv, row by row."""
    model = keras_models[(alpha, res, classes)]
    names = {layer.name for layer in model.layers}
    for row in mobilenet_v1_layers(alpha, res, classes):
        if row.keras_layer is None:
            continue
        keras_layer = model.get_layer(row.keras_layer)
        expected = (classes,) if row.type == "Softmax" else row.output
        assert tuple(keras_layer.output.shape[1:]) == expected, row.keras_layer
        bn = f"{row.keras_layer}_bn"
        bn_params = model.get_layer(bn).count_params() if bn in names else 0
        assert row.keras_params == keras_layer.count_params() + bn_params, row.keras_layer
