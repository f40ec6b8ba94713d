"""`make mcu`: one variant as a microcontroller runs it — TFLite Micro's kernels, its arena, flash, an NPU.

Steps (numbered in `mcu_stage`):
  1. build the float model and calibrate (as the recipe does)
  2. the file TFLite Micro takes: full int8 with int8 I/O, no metadata; refused, naming them, when it needs
     ops TFLite Micro lacks (targets/mcu/tflm.py reads the installed package's kernel list)
  3. memory: the smallest arena that runs it (bisection, one child process per probe); flash = its bytes
  4. accuracy on TFLite Micro's kernels: the held-out images through its interpreter (in a child process:
     a crash is one line, exit 3) and through LiteRT's reference and default kernels; top-1 of each,
     agreement, the largest output gap in quantization steps (the reference kernels must match within one)
  5. the NPU (NPU=ethos-u…): Vela's compiled file, op split, SRAM / flash, cycles and time at its clock
  6. the budget: peak SRAM and flash against SRAM / FLASH; over it, the figures say by how much
  7. what embedded projects include: the deployed file as C source + header (only when it fits)
  8. OUT/<task>/<variant>/mcu/mcu.json, the record the report and the sweep read
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobilenet_edge.pipeline.artifacts import sha256_file, write_bytes, write_json
from mobilenet_edge.pipeline.config import McuBudget, McuConfig, QuantConfig, ValidationConfig
from mobilenet_edge.pipeline.errors import PipelineError

log = logging.getLogger(__name__)

MCU_DIR = "mcu"
MCU_RECORD = "mcu.json"


@dataclass(frozen=True)
class McuResult:
    folder: Path  # OUT/<task>/<variant>/mcu
    record: dict  # what mcu.json holds
    fits: bool
    short: tuple[str, ...]  # why not: "peak SRAM 301.2 KiB > SRAM 256.0 KiB (by 45.2 KiB)", ...

    @property
    def path(self) -> Path:
        return self.folder / MCU_RECORD


def mcu_file_name(variant_name: str) -> str:
    return f"{variant_name}_int8_mcu.tflite"


def int8_io_bytes(cfg: McuConfig, task, model) -> bytes:
    """Full int8 with int8 I/O and per-channel weights, calibrated like the recipe's int8 file; no metadata
    (a microcontroller never reads it, and it costs flash)."""
    from mobilenet_edge.calibration.representative import calibration_set
    from mobilenet_edge.calibration.synthetic import SyntheticConfig
    from mobilenet_edge.pipeline.convert.tflite import tflite_bytes
    from mobilenet_edge.pipeline.recipe import calibration_count_and_seed

    quant = QuantConfig(io_dtype="int8", num_samples=cfg.num_samples, seed=cfg.seed, calib_dir=cfg.calib_dir)
    v = cfg.variant
    calib = calibration_set(task, v.resolution, *calibration_count_and_seed(task, quant), quant.calib_dir,
                            arch=v.arch, model=model, synthetic=SyntheticConfig(steps=quant.synthetic_steps))
    return tflite_bytes(model, "int8", calib, quant)


def litert_outputs(path: Path, inputs: np.ndarray, reference: bool = False) -> np.ndarray:
    """The same file on LiteRT: raw int8 outputs, one row per input. `reference`: LiteRT's reference kernels
    (BUILTIN_REF, the ones TFLite Micro's are ported from) instead of its optimised ones."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
    interpreter = Interpreter(model_path=str(path), num_threads=1, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rows = []
    for row in inputs:
        interpreter.set_tensor(inp["index"], row[None])
        interpreter.invoke()
        rows.append(interpreter.get_tensor(out["index"]).reshape(-1).copy())
    return np.stack(rows)


def compare_outputs(tflm: np.ndarray, litert: np.ndarray, labels: np.ndarray | None) -> dict:
    """LiteRT's top-1 (with labels), its top-1 agreement with TFLite Micro, and how far the raw int8 outputs
    differ, in quantization steps."""
    steps = np.abs(tflm.astype(np.int32) - litert.astype(np.int32))
    result = {"top1_agreement": round(float((tflm.argmax(1) == litert.argmax(1)).mean()), 6),
              "max_step_difference": int(steps.max()), "outputs_equal": round(float((steps == 0).mean()), 6),
              "within_one_step": bool(steps.max() <= 1)}
    if labels is not None:
        result["top1"] = round(float((litert.argmax(1) == labels).mean()), 6)
    return result


def accuracy_on_kernels(tflm: np.ndarray, path: Path, inputs: np.ndarray, labels: np.ndarray | None) -> dict:
    """TFLite Micro's top-1, against LiteRT on the same file twice: its reference kernels (the check: equal or
    within one step) and its default, optimised kernels (what `make validate` measures; their rounding differs,
    and a softmax output spreads one logit step over several output steps)."""
    result = {"images": int(len(tflm))}
    if labels is not None:
        result["tflm_top1"] = round(float((tflm.argmax(1) == labels).mean()), 6)
    result["vs_litert_reference"] = compare_outputs(tflm, litert_outputs(path, inputs, reference=True), labels)
    result["vs_litert"] = compare_outputs(tflm, litert_outputs(path, inputs), labels)
    result["within_one_step"] = result["vs_litert_reference"]["within_one_step"]
    return result


def mcu_inputs(cfg: McuConfig) -> dict:
    """What an mcu.json was made from (a sweep redoes a variant only when this changed): the variant and its
    weights, the budget, images and calibration, the tools' versions and this stage's code."""
    import hashlib
    from dataclasses import asdict
    from importlib.metadata import PackageNotFoundError, version

    from mobilenet_edge.pipeline import build
    from mobilenet_edge.pipeline.manifest import tool_versions

    def installed(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    weights = build.weights_path(cfg.variant)
    root = Path(__file__).resolve().parents[1]
    code = hashlib.sha256()
    for path in [root / "pipeline" / "mcu.py", *sorted((root / "targets" / "mcu").glob("*.py"))]:
        code.update(path.name.encode() + b"\0" + path.read_bytes())
    return {"variant": asdict(cfg.variant) | {"weights": cfg.variant.weights if weights is None else None},
            "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest() if weights else None,
            "budget": asdict(cfg.budget), "images": cfg.images, "calibration": [cfg.num_samples, cfg.seed, cfg.calib_dir],
            "tools": {**tool_versions(), "tflite-micro": installed("tflite-micro"), "ethos-u-vela": installed("ethos-u-vela")},
            "code": code.hexdigest()}


def verdict_text(record: dict) -> str:
    """'fits (SRAM 101.4 / 256.0 KiB, flash 307.0 / 1024.0 KiB)' or 'over: <why>' — a sweep's table cell."""
    b = record["budget"]
    figures = (f"SRAM {record['peak_sram_bytes'] / 1024:.1f} / {b['sram_bytes'] / 1024:.1f} KiB, flash "
               f"{record['flash_bytes'] / 1024:.1f} / {b['flash_bytes'] / 1024:.1f} KiB")
    return f"fits ({figures})" if record["fits"] else f"over ({figures})"


def check_budget(sram: int, flash: int, budget: McuBudget) -> tuple[str, ...]:
    """What exceeds the budget, with the figures; () when it fits."""
    kib = lambda n: f"{n / 1024:.1f} KiB"  # noqa: E731
    short = []
    if sram > budget.sram:
        short.append(f"peak SRAM {kib(sram)} > SRAM {kib(budget.sram)} (by {kib(sram - budget.sram)})")
    if flash > budget.flash:
        short.append(f"flash {kib(flash)} > FLASH {kib(budget.flash)} (by {kib(flash - budget.flash)})")
    return tuple(short)


def mcu_stage(cfg: McuConfig) -> McuResult:
    """Steps 1-8 of the module doc for one variant; PipelineError for a model TFLite Micro cannot take,
    ToolError when its interpreter or Vela fails; a result with fits=False when over the budget."""
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline import build
    from mobilenet_edge.pipeline.clean import claim_output
    from mobilenet_edge.pipeline.convert.tflite import quantize_input
    from mobilenet_edge.pipeline.recipe import ensure_writable, variant_dir
    from mobilenet_edge.pipeline.validate import held_out_images
    from mobilenet_edge.targets.mcu import csource, tflm

    v, budget = cfg.variant, cfg.budget
    task = resolve_task(v.task)
    tflm.tflm_ops()  # without the mcu extra, fail before any work
    if budget.npu != "none":
        from mobilenet_edge.targets.mcu.vela import vela_command

        vela_command()
    folder = variant_dir(cfg.out, task, v) / MCU_DIR
    claim_output(cfg.out)
    ensure_writable(folder)

    # 1. build and calibrate; 2. the file TFLite Micro takes
    model = build.build_model(v, task.num_classes)
    if v.weights == "reference":
        from mobilenet_edge.pipeline.recipe import warn_if_off_resolution

        warn_if_off_resolution(build.weights_path(v), v.resolution)
    path = write_bytes(folder / mcu_file_name(v.name), int8_io_bytes(cfg, task, model))
    try:
        check = tflm.require_tflm_file(path)
    except PipelineError:
        path.unlink(missing_ok=True)  # a file TFLite Micro cannot take must not look like one it can
        raise

    # 3. memory
    arena = tflm.find_arena(path)
    flash = path.stat().st_size

    # 4. accuracy on TFLite Micro's kernels, beside LiteRT's on the same file
    images = held_out_images(task, v.resolution, ValidationConfig(limit=cfg.images))
    from ai_edge_litert.interpreter import Interpreter

    detail = Interpreter(model_path=str(path)).get_input_details()[0]
    inputs = quantize_input(task.preprocessing(v.resolution, v.arch).normalize(images.pixels), detail)
    tflm_out, ran = tflm.run_tflm(path, arena.bytes, inputs)
    accuracy = accuracy_on_kernels(tflm_out, path, inputs, images.labels)
    accuracy["source"] = images.source
    accuracy["tflm_ms_per_image_host"] = ran.get("ms_per_image_host")

    # 5. the NPU
    npu = None
    if budget.npu != "none":
        from mobilenet_edge.targets.mcu.vela import compile_for_npu

        npu = compile_for_npu(path, budget.npu, folder)

    # 6. the budget: with an NPU, Vela's SRAM (the NPU's arena) and the compiled file are what the part holds
    peak_sram = npu.sram_bytes if npu else arena.bytes
    deployed = folder / npu.file if npu else path
    flash_bytes = deployed.stat().st_size
    short = check_budget(peak_sram, flash_bytes, budget)
    if not accuracy["within_one_step"]:
        short += (f"TFLite Micro's outputs differ from LiteRT's reference kernels' by up to "
                  f"{accuracy['vs_litert_reference']['max_step_difference']} "
                  f"quantization steps (expected at most 1)",)

    # 7. C source, only of a model that fits
    c_files = None
    for pattern in ("*.cc", "*.h", *(("*_vela.tflite",) if npu is None else ())):  # an earlier run's, now untrue
        for stale in folder.glob(pattern):
            stale.unlink()
    if not short:
        made = csource.write_c_source(deployed, folder, arena.bytes if not npu else None)
        c_files = {"source": made.source.name, "header": made.header.name, "symbol": made.symbol, "bytes": made.bytes}

    # 8. the record
    record = {
        "schema": 1, "inputs": mcu_inputs(cfg), "variant": v.name, "arch": v.arch, "alpha": v.alpha, "resolution": v.resolution, "task": task.slug,
        "budget": {"sram_bytes": budget.sram, "flash_bytes": budget.flash, "npu": budget.npu},
        "file": path.name, "sha256": sha256_file(path), "tflm_version": check.tflm_version, "ops": check.ops,
        "arena_bytes": arena.bytes, "arena_probes": arena.probes, "arena_recorded_bytes": arena.recorded,
        "model_bytes": flash, "peak_sram_bytes": peak_sram, "flash_bytes": flash_bytes, "deployed_file": deployed.name,
        "accuracy": accuracy, "npu": npu.to_dict() if npu else None, "c_source": c_files,
        "fits": not short, "short": list(short),
        "note": ("arena sizes are those of TFLite Micro's host build (64-bit pointers); Vela's figures are "
                 "compiler estimates at its system configuration's clock"),
    }
    write_json(folder / MCU_RECORD, record)
    return McuResult(folder, record, not short, short)
