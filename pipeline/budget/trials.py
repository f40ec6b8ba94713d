"""The trials of the BUDGET search (pipeline/budget/) for TFLite and ONNX, cheapest first.

Each trial is (name, settings, make): `make()` writes the trial's file under its own name through the
ordinary converters (pipeline/convert/tflite.py, onnx.py) and returns its Artifact, or a reason why it
cannot run here.
"""
from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobilenet_edge.calibration.representative import CalibrationSet, calibration_set
from mobilenet_edge.calibration.synthetic import SyntheticConfig
from mobilenet_edge.pipeline import formats
from mobilenet_edge.pipeline.budget import KEEP_FLOAT_STEPS, MORE_SAMPLES, BudgetResult, finish, held_out, p50_ms, search, \
    trial_folder
from mobilenet_edge.pipeline.convert.tflite import Artifact, batch_of_one, convert_tflite, tflite_bytes
from mobilenet_edge.pipeline.convert.onnx import convert_onnx_int8

log = logging.getLogger(__name__)


def tflite_16x8_bytes(model, calib: CalibrationSet) -> bytes:
    """int8 weights, int16 activations. Float I/O: the mode offers int16 or float, not the Task Library's uint8."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(batch_of_one(model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calib.batches
    # Ops without a 16x8 kernel (V3's HARD_SWISH) stay in float rather than failing the conversion.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
                                           tf.lite.OpsSet.TFLITE_BUILTINS]
    with contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()


def faster_than_float(candidate: Path, float_file: Path, threads: int) -> str | None:
    """None when `candidate` runs at least as fast as the float file here (interleaved medians), else why not."""
    a, b = [], []
    for _ in range(3):  # interleaved: a busy neighbour slows both alike
        a.append(p50_ms(candidate, threads, runs=10))
        b.append(p50_ms(float_file, threads, runs=10))
    mine, fp32 = float(np.median(a)), float(np.median(b))
    if mine <= fp32:
        return None
    return f"runs at {mine:.2f} ms against {fp32:.2f} ms for fp32 here (slower than float, which is exact)"


def tflite_trials(model, quant, folder: Path, name: str, calib: CalibrationSet, more_calib, add_metadata,
                  threads: int):
    """TFLite trials 1-4 (see pipeline/budget/); `more_calib(n)` -> a CalibrationSet of n samples."""
    def path(trial: str) -> Path:
        return folder / f"{name}_{trial}{formats.get('int8').suffix}"

    count = len(calib.samples)
    yield "int8", {"per_channel": quant.per_channel, "samples": count}, \
        lambda: convert_tflite(model, "int8", path("int8"), calib, quant, add_metadata)

    def more():
        bigger = more_calib(MORE_SAMPLES * count)
        if len(bigger.samples) <= count:
            return f"no more than {count} calibration images available"
        return convert_tflite(model, "int8", path(f"int8_n{len(bigger.samples)}"), bigger, quant, add_metadata)
    yield f"int8_n{MORE_SAMPLES * count}", {"per_channel": quant.per_channel, "samples": MORE_SAMPLES * count}, more

    def sixteen():
        try:
            data = tflite_16x8_bytes(model, calib)
        except Exception as exc:  # the converter's own refusal (an op it cannot quantize) skips the trial
            return f"the converter refused 16x8 ({type(exc).__name__}: {str(exc).splitlines()[0][:100]})"
        out = convert_tflite(model, "int8", path("int8_16x8"), calib, quant, add_metadata, data=data,
                             extra=(("activations", "int16"),))
        with tempfile.TemporaryDirectory() as scratch:
            fp32 = Path(scratch) / "fp32.tflite"
            fp32.write_bytes(tflite_bytes(model, "fp32"))
            slower = faster_than_float(out.path, fp32, threads)
        if slower:
            out.path.unlink(missing_ok=True)
            return slower
        return out
    yield "int8_16x8", {"activations": "int16", "weights": "int8", "io": "float"}, sixteen

    diagnosis = []

    def keep(k: int):
        from mobilenet_edge.pipeline.convert.diagnose import diagnose_int8, selective_int8

        if not diagnosis:
            diagnosis.append(diagnose_int8(model, calib, quant))
        worst = diagnosis[0].worst_layers
        if k > len(worst):
            return f"only {len(worst)} layers ranked"
        kept = [layer["tensor"] for layer in worst[:k]]
        return convert_tflite(model, "int8", path(f"int8_keep{k}"), calib, quant, add_metadata,
                              data=selective_int8(model, calib, diagnosis[0], k, quant),
                              extra=(("keep_float", kept),))
    for k in KEEP_FLOAT_STEPS:
        # The quantization debugger's quantizer offers int8, not uint8, I/O for these files.
        yield f"int8_keep{k}", {"keep_float": k, "io": "int8"}, (lambda k=k: keep(k))


def budget_tflite(model, quant, folder: Path, name: str, calib: CalibrationSet, more_calib, add_metadata,
                  data, threads: int = 2) -> BudgetResult:
    """The TFLite search; the chosen file becomes `<name>_int8.tflite`."""
    final = folder / formats.get("int8").file_name(name)
    skipped: list[str] = []
    with trial_folder(folder) as scratch:
        done, made, chosen = search(tflite_trials(model, quant, scratch, name, calib, more_calib, add_metadata,
                                                  threads), data, quant.budget, threads, skipped)

        def promote(i: int) -> Artifact:
            a = made[i]
            extra = tuple((k, v) for k, v in a.extra if k != "io_dtype")
            return convert_tflite(model, "int8", final, calib, quant, None, data=a.path.read_bytes(),
                                  extra=extra + (("budget_trial", done[i].name),))
        measure = "top1_drop_points" if data.labels is not None else "agreement_loss_points"
        return finish(done, made, chosen, final, promote, quant.budget, measure, len(data.pixels), skipped,
                      data.float_top1)


def onnx_trials(fp32: Path, folder: Path, name: str, calib: CalibrationSet, more_calib, per_channel: bool,
                metadata, threads: int):
    """ONNX trials 1-4 (see pipeline/budget/); the keep-k trials share one ranking, made at the first of them."""
    def path(trial: str) -> Path:
        return folder / f"{name}_{trial}{formats.get('onnx-int8').suffix}"

    count = len(calib.samples)
    yield "int8", {"calibrate_method": "MinMax", "samples": count}, \
        lambda: convert_onnx_int8(fp32, path("int8"), calib, per_channel, metadata=metadata)

    def more():
        bigger = more_calib(MORE_SAMPLES * count)
        if len(bigger.samples) <= count:
            return f"no more than {count} calibration images available"
        return convert_onnx_int8(fp32, path(f"int8_n{len(bigger.samples)}"), bigger, per_channel, metadata=metadata)
    yield f"int8_n{MORE_SAMPLES * count}", {"calibrate_method": "MinMax", "samples": MORE_SAMPLES * count}, more
    for method in ("Percentile", "Entropy"):
        yield f"int8_{method.lower()}", {"calibrate_method": method, "samples": count}, \
            (lambda m=method: convert_onnx_int8(fp32, path(f"int8_{m.lower()}"), calib, per_channel,
                                                metadata=metadata, calibrate_method=m))

    def sixteen():
        try:
            out = convert_onnx_int8(fp32, path("int8_16x8"), calib, per_channel, metadata=metadata,
                                    activations="int16")
        except Exception as exc:  # onnxruntime's quantizer or its kernels refusing 16-bit activations
            return f"onnxruntime refused QInt16 activations ({type(exc).__name__}: {str(exc).splitlines()[0][:100]})"
        slower = faster_than_float(out.path, fp32, threads)
        if slower:
            out.path.unlink(missing_ok=True)
            return slower
        return out
    yield "int8_16x8", {"activations": "int16", "weights": "int8"}, sixteen

    diagnosis = []

    def keep(k: int):
        from mobilenet_edge.pipeline.convert.diagnose_onnx import diagnose_onnx_int8

        if not diagnosis:
            diagnosis.append(diagnose_onnx_int8(fp32, calib, per_channel))
            log.info("ONNX int8 nodes worst first: %s", ", ".join(f"{n['node']} {n['sqnr_db']:.1f} dB"
                                                                  for n in diagnosis[0].worst_nodes))
        worst = diagnosis[0].worst_nodes
        if k > len(worst):
            return f"only {len(worst)} nodes ranked"
        return convert_onnx_int8(fp32, path(f"int8_keep{k}"), calib, per_channel, metadata=metadata,
                                 nodes_to_exclude=diagnosis[0].nodes_to_exclude(k))
    for k in KEEP_FLOAT_STEPS:
        yield f"int8_keep{k}", {"keep_float": k, "calibrate_method": "MinMax"}, (lambda k=k: keep(k))


def budget_onnx(fp32: Path, folder: Path, name: str, calib: CalibrationSet, more_calib, per_channel: bool,
                metadata, data, budget: float, threads: int = 2) -> BudgetResult:
    """The ONNX search; the chosen file becomes `<name>_int8.onnx`."""
    import shutil

    final = folder / formats.get("onnx-int8").file_name(name)
    skipped: list[str] = []
    with trial_folder(folder) as scratch:
        done, made, chosen = search(onnx_trials(fp32, scratch, name, calib, more_calib, per_channel, metadata,
                                                threads), data, budget, threads, skipped)

        def promote(i: int) -> Artifact:
            from mobilenet_edge.pipeline.artifacts import atomic_path

            with atomic_path(final) as tmp:
                shutil.copyfile(made[i].path, tmp)
            return Artifact(**{**made[i].__dict__, "path": final,
                               "extra": tuple(made[i].extra) + (("budget_trial", done[i].name),)})
        measure = "top1_drop_points" if data.labels is not None else "agreement_loss_points"
        return finish(done, made, chosen, final, promote, budget, measure, len(data.pixels), skipped,
                      data.float_top1)


@dataclass(frozen=True)
class BudgetSearch:
    """BUDGET (pipeline/budget/): what both searches share — the model, the held-out images, more samples."""

    model: object
    cfg: object  # pipeline.recipe.RecipeConfig (not imported: recipe imports this module)
    task: object
    folder: Path
    calib: CalibrationSet
    data: object  # budget.HeldOut

    @property
    def threads(self) -> int:
        return self.cfg.validation.threads if self.cfg.validation else 2

    def more_calib(self, n: int) -> CalibrationSet:
        v, q = self.cfg.variant, self.cfg.quant
        return calibration_set(self.task, v.resolution, n, q.seed, q.calib_dir, progress=False, arch=v.arch,
                               model=self.model, synthetic=SyntheticConfig(steps=q.synthetic_steps))

    def tflite(self, add_metadata) -> tuple[Artifact, ...]:
        return budget_tflite(self.model, self.cfg.quant, self.folder, self.cfg.variant.name, self.calib,
                             self.more_calib, add_metadata, self.data, self.threads).artifacts

    def onnx(self, fp32: Path, metadata) -> tuple[Artifact, ...]:
        q = self.cfg.quant
        return budget_onnx(fp32, self.folder, self.cfg.variant.name, self.calib, self.more_calib, q.per_channel,
                           metadata, self.data, q.budget, self.threads).artifacts


def budget_search(model, cfg, task, folder: Path, calib: CalibrationSet) -> BudgetSearch:
    """The held-out images (validation's, never calibration's) and the float answers, for both searches."""
    from mobilenet_edge.pipeline.config import ValidationConfig

    return BudgetSearch(model, cfg, task, folder, calib, held_out(folder, task, cfg.validation or ValidationConfig()))
