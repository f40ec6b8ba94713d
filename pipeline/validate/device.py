"""Stage 6b — validate on the device: the held-out images through every artifact where it will run.

A file can score differently on a device than on this machine (other kernels, another runtime release,
a delegate). So the same images as `pipeline.validate` (same split, limit, seed and preprocessing; each
artifact fed exactly as there) are prepared here as .npy chunks, run by the standalone runner on this
machine and on the device (`Target.predict`: the runner's --predict), and compared:

  1. held-out images and the float model's probabilities (Keras, on this machine)
  2. one input tensor per distinct artifact input (raw uint8 pixels, normalised float, quantized int8)
  3. the runner on this machine, then on the device, over the same chunks
  4. per artifact: top-1 on both sides, top-1 agreement device vs. this machine and vs. the float
     model, max |Δ| of the (dequantized) outputs, the runtime name and version on both sides
  5. validation-<target>.json in the variant folder; an artifact whose device result differs is flagged
"""
from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobilenet_edge.calibration.preprocessing import Preprocessing
from mobilenet_edge.calibration.tasks import Task
from mobilenet_edge.pipeline.validate import runtimes
from mobilenet_edge.pipeline.artifacts import write_json
from mobilenet_edge.pipeline.convert.tflite import dequantize_output, quantize_input
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.manifest import read_manifest
from mobilenet_edge.pipeline.validate.metrics import top1_agreement, topk_accuracy
from mobilenet_edge.pipeline.validate import FLOAT_MODEL, held_out_images
from mobilenet_edge.pipeline.config import ValidationConfig
from mobilenet_edge.targets.target import Target

log = logging.getLogger(__name__)

CHUNK = 250  # images per .npy chunk: a few MB even for float inputs at 224 px


@dataclass(frozen=True)
class DeviceValidationResult:
    path: Path
    differs: tuple[str, ...]  # "mobilenet_..._dynamic.tflite: agreement with this machine 99.1 %, max |Δ| 0.02"


def artifact_input(pixels: np.ndarray, normalize, spec: dict, fmt: str) -> np.ndarray:
    """What `pipeline.validate.runtimes` feeds an artifact: uint8-input .tflite raw pixels, others the normalised image
    (quantized for an int8 input)."""
    if fmt == "tflite" and spec["dtype"] == "uint8":
        return pixels
    detail = {"dtype": spec["dtype"], "quantization": (spec.get("scale") or 0.0, spec.get("zero_point") or 0)}
    return quantize_input(normalize(pixels), detail)


def write_inputs(folder: Path, entries: list[dict], pixels: np.ndarray, normalize) -> None:
    """Chunks <key>.<i>.npy, one set per distinct input tensor, and inputs.json naming each model's chunks."""
    names, plan = {}, {}
    for entry in entries:
        spec = entry["inputs"][0]
        kind = "pixels" if entry["format"] == "tflite" and spec["dtype"] == "uint8" else \
            f"{spec['dtype']}-{spec.get('scale')}-{spec.get('zero_point')}"
        if kind not in names:
            key = f"input{len(names)}"
            tensor = artifact_input(pixels, normalize, spec, entry["format"])
            names[kind] = [f"{key}.{i // CHUNK:03d}.npy" for i in range(0, len(tensor), CHUNK)]
            for i, name in zip(range(0, len(tensor), CHUNK), names[kind]):
                np.save(folder / name, np.ascontiguousarray(tensor[i:i + CHUNK]))
        plan[entry["file"]] = names[kind]
    (folder / "inputs.json").write_text(json.dumps(plan, indent=1))


def probabilities(raw: np.ndarray, entry: dict) -> np.ndarray:
    spec = entry["outputs"][0]
    detail = {"dtype": spec["dtype"], "quantization": (spec.get("scale") or 0.0, spec.get("zero_point") or 0)}
    return dequantize_output(raw, detail)


def _runtime(record: dict) -> dict:
    return {"name": record.get("runtime"), "version": record.get("runtime_version"), "delegate": record.get("delegate")}


def _row(entry: dict, host_raw, device_raw, host_run: dict, device_run: dict, reference, labels) -> dict:
    """One artifact's figures; `differs` when a top-1 moved or the outputs moved by more than one output step."""
    host, device = probabilities(host_raw, entry), probabilities(device_raw, entry)
    scale = entry["outputs"][0].get("scale")
    tolerance = scale if scale else 1e-4  # one quantization step; float outputs: rounding of other kernels
    delta = float(np.max(np.abs(host.astype(np.float64) - device))) if len(host) else 0.0
    agreement = top1_agreement(host, device)
    row = {"file": entry["file"], "format": entry["format"], "precision": entry["precision"],
           "sha256": entry["sha256"], "images": int(len(device)),
           "device": {"top1": topk_accuracy(device, labels, 1) if labels is not None else None,
                      "top1_agreement_float": top1_agreement(reference, device), "runtime": _runtime(device_run)},
           "host": {"top1": topk_accuracy(host, labels, 1) if labels is not None else None,
                    "top1_agreement_float": top1_agreement(reference, host), "runtime": _runtime(host_run)},
           "top1_agreement_host": agreement, "max_abs_diff_host": delta, "tolerance": tolerance}
    row["differs"] = bool(agreement < 1.0 or delta > tolerance)
    return row


def validate_on_device(variant_dir: Path, task: Task, target: Target,
                       cfg: ValidationConfig = ValidationConfig(limit=1000), *, threads: int | None = None,
                       runtime: str = "auto", timeout_s: float = 1800) -> DeviceValidationResult:
    """Run the held-out images through every artifact on this machine and on `target` (a device Target:
    targets.registry.resolve_target); write validation-<target>.json.

    threads: runner threads on both sides (default: the profile's); runtime: on the device (default auto, the
    profile's preference). Raises PipelineError for a folder without artifacts and for every ssh failure,
    ToolError when the runner crashes on either side.
    """
    from mobilenet_edge.targets.registry import resolve_target

    variant_dir = Path(variant_dir)
    manifest = read_manifest(variant_dir)
    if manifest is None or not (variant_dir / FLOAT_MODEL).is_file():
        raise PipelineError(f"expected a converted variant folder (manifest.json, {FLOAT_MODEL}), received {variant_dir}")
    entries = [e for e in manifest["artifacts"] if (variant_dir / e["file"]).is_file()]
    if not entries:
        raise PipelineError(f"expected .tflite or .onnx artifacts in {variant_dir}, received none (export them first)")
    if target.is_local:
        raise PipelineError(f"expected a device to validate on (HOST=user@host, pi-emulator, ...), received {target.name!r}")
    prof = target.profile
    here = resolve_target("local", profile=prof)  # this machine, with the device's runtime preference
    # 1. images and the float reference
    images = held_out_images(task, manifest["variant"]["resolution"], cfg)
    normalize = Preprocessing.from_dict(manifest["preprocessing"]).normalize
    reference = runtimes.predict(runtimes.KerasModel(variant_dir / FLOAT_MODEL, cfg.batch), images.pixels, normalize)
    models = [variant_dir / e["file"] for e in entries]
    threads = threads if threads is not None else (prof.threads if prof else None)
    with tempfile.TemporaryDirectory(prefix="device-validation-") as tmp:
        # 2. inputs
        write_inputs(Path(tmp), entries, images.pixels, normalize)
        # 3. this machine, then the device
        log.info("device validation of %s: %d image(s), %d artifact(s), on this machine", variant_dir.name,
                 len(images.pixels), len(models))
        host = here.predict(models, Path(tmp), threads=threads)
        log.info("device validation of %s on %s", variant_dir.name, target.name)
        device = target.predict(models, Path(tmp), threads=threads, runtime=runtime, timeout_s=timeout_s)
    # 4. figures
    rows = [_row(e, host.outputs[e["file"]], device.outputs[e["file"]], host.runs[e["file"]],
                 device.runs[e["file"]], reference, images.labels) for e in entries if e["file"] in device.outputs]
    differs = tuple(f"{r['file']}: agreement with this machine {100 * r['top1_agreement_host']:.2f} %, "
                    f"max |Δ| {r['max_abs_diff_host']:.3g} (tolerance {r['tolerance']:.3g})" for r in rows if r["differs"])
    # 5. record
    path = write_json(variant_dir / f"validation-{target.label}.json", {
        "schema": 1, "target": target.label, "variant": manifest["variant"]["name"], "task": manifest["variant"]["task"],
        "images": int(len(images.pixels)), "labelled": images.labels is not None, "source": images.source,
        "images_sha256": images.digest,
        "float": {"top1": topk_accuracy(reference, images.labels, 1)} if images.labels is not None else {},
        "device": {"host": target.address, "port": target.port, "profile": prof.name if prof else None,
                   "python": target.python, "threads": threads,
                   "machine": device.host.get("machine"), "cpu": device.host.get("cpu"),
                   "numpy": device.host.get("numpy"), "runtimes": device.host.get("runtimes")},
        "this_machine": {"machine": host.host.get("machine"), "cpu": host.host.get("cpu"),
                         "numpy": host.host.get("numpy"), "runtimes": host.host.get("runtimes")},
        "artifacts": rows, "differs": list(differs)})
    log.info("wrote %s (%d artifact(s) differ from this machine)", path, len(differs))
    return DeviceValidationResult(path, differs)
