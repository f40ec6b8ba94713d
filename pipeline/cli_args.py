"""The command line's grammar: every command, its options and their types (`mobilenet-edge --help`).

pipeline/cli.py maps each command to the function that runs it; nothing here runs a stage.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from mobilenet_edge.pipeline.archs import ARCHS, alpha_help, arch_help
from mobilenet_edge.pipeline.cli_errors import OneLineParser
from mobilenet_edge.pipeline.config import (ANDROID_EPOCHS, DEFAULT_FORMATS, DEFAULT_OUT, DEFAULT_TASK, DEMO_ARCHS,
                                            FOLDER_HEAD_EPOCHS, FORMATS, MCU_FLASH, MCU_IMAGES, MCU_SRAM, NPUS,
                                            PAPER_ALPHAS, PREDICT_TOP, SAMPLE_LIMIT, TRAIN_TASK,
                                            DeviceProfile, ExportConfig, Gates, QuantConfig, SweepConfig, TrainConfig)

DESCRIPTION = "`mobilenet-edge`: the command line. Parses arguments, calls one library function, prints the result."
# Every default below is read from pipeline/config.py, where it is stated once; help texts quote it as %(default)s.
QUANT, GATES, TRAIN, SWEEP = QuantConfig(), Gates(), TrainConfig(), SweepConfig()


def _words(values) -> str:
    return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def add_variant_args(p: argparse.ArgumentParser, task_default: str = DEFAULT_TASK) -> None:
    p.add_argument("--arch", default="v1", help=arch_help())
    p.add_argument("--alpha", default="1.0", help=f"width multiplier (default 1.0): {alpha_help()}")
    p.add_argument("--res", default=None, help="input side in pixels, >= 32 (default 224; the reference "
                   "checkpoint's training size, 64, for TASK=fashion-mnist)")
    p.add_argument("--rho", default=None, help="resolution multiplier in (0, 1]: RES = round(224 * rho)")
    p.add_argument("--task", default=task_default,
                   help="imagenet | fashion-mnist | folder of class sub-folders (default %(default)s)")
    p.add_argument("--weights", default=None, help="imagenet | random | reference | path (default: the task's)")
    p.add_argument("--out", default=DEFAULT_OUT, type=Path, help="output folder (default %(default)s)")


def _add_validation_args(p: argparse.ArgumentParser, limit: int | None = None) -> None:
    p.add_argument("--limit", type=int, default=limit,
                   help=f"validate on this many held-out images (default {limit or 'all'})")
    p.add_argument("--eval", default=None, help="ImageNet-val style folder (one sub-folder per synset)")
    p.add_argument("--gate-fp32", type=float, default=GATES.fp32_agreement,
                   help="min top-1 agreement for fp32 (default %(default)s)")
    p.add_argument("--gate-fp16", type=float, default=GATES.fp16_agreement,
                   help="min top-1 agreement for fp16 (default %(default)s)")
    p.add_argument("--gate-int8-drop", type=float, default=GATES.int8_drop_points,
                   help="max int8 top-1 drop in points (default %(default)s)")
    p.add_argument("--gate-int8-agreement", type=float, default=GATES.int8_agreement,
                   help="min int8 top-1 agreement (default %(default)s)")
    p.add_argument("--runtimes", default="", help="also validate every artifact with these runtimes "
                   "(comma-separated runner names, benchmarks/runtimes/): one more row each")


def _add_ssh_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=None, help="ssh port (default: ssh's own, e.g. an alias's Port)")
    p.add_argument("--identity", default=None, help="ssh private key")
    p.add_argument("--known-hosts", default=None, help="known_hosts file to check the host key against")
    p.add_argument("--ssh-config", default=None, help="ssh config file instead of ~/.ssh/config (ssh -F)")
    p.add_argument("--no-host-key-check", action="store_true", help="do not check the device's host key")


def thread_counts(text: str) -> int | tuple[int, ...] | None:
    """'4' -> 4, '1 2 4' -> (1, 2, 4): THREADS as an axis."""
    try:
        counts = tuple(int(v) for v in str(text).replace(",", " ").split())
    except ValueError:  # argparse turns this into its own one-line error (pipeline.cli_errors)
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if any(c < 1 for c in counts):
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r} (each count >= 1)")
    return None if not counts else counts[0] if len(counts) == 1 else counts


def _export_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calib", default=None, help="folder of calibration images (default: the task's training split)")
    _calibration_flags(p)
    p.add_argument("--per-tensor", action="store_true", help="also write the per-tensor int8 .tflite")
    p.add_argument("--per-tensor-only", action="store_true", help="int8 with per-tensor weights only")
    p.add_argument("--opset", type=int, default=ExportConfig.opset, help="ONNX opset (default %(default)s)")
    p.add_argument("--diagnose", action="store_true", help="per-layer int8 diagnosis (quantization debugger)")
    p.add_argument("--keep-float", type=int, default=QUANT.keep_float, metavar="K",
                   help="also write an int8 .tflite with the K worst layers kept in float")
    p.add_argument("--no-metadata", action="store_true", help="do not embed TFLite metadata")
    _int8_flags(p)


def _int8_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calib-url", default=None, help="download calibration images: a .tar.gz/.tgz/.tar/.zip of images "
                   "(only with --calib-sha256; cached under ~/.cache/mobilenet-edge)")
    p.add_argument("--calib-sha256", default=None, help="the sha256 the --calib-url archive must have")
    p.add_argument("--synthetic-n", type=int, default=QUANT.synthetic_samples, help="samples of data-free "
                   "calibration (CALIB=synthetic, or TASK=imagenet without CALIB; default %(default)s)")
    p.add_argument("--synthetic-steps", type=int, default=QUANT.synthetic_steps,
                   help="optimisation steps per synthetic batch (default %(default)s)")
    p.add_argument("--budget", type=float, default=None, metavar="POINTS",
                   help="search for the cheapest int8 file within this top-1 drop (points) on held-out images")


def _calibration_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=QUANT.num_samples, help="calibration samples (default %(default)s)")
    p.add_argument("--seed", type=int, default=QUANT.seed)
    p.add_argument("--int8-io", default=QUANT.io_dtype, choices=["uint8", "int8", "float"],
                   help="full-int8 I/O dtype (default %(default)s)")


def parser() -> argparse.ArgumentParser:
    ap = OneLineParser(prog="mobilenet-edge", description=DESCRIPTION)
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("export", help="build and convert one variant (steps 1-5, optionally 6-8)")
    add_variant_args(p)
    _export_flags(p)
    p.add_argument("--formats", default="all", help=f"comma-separated among {','.join(FORMATS)} (default all)")
    p.add_argument("--validate", action="store_true", help="validate after converting")
    _add_validation_args(p)
    p.add_argument("--bench-threads", type=int, default=None, help="benchmark locally with this many threads")
    p.add_argument("--report", action="store_true", help="write OUT/report.* at the end")

    p = sub.add_parser("validate", help="accuracy drift of every artifact of a variant vs. the float model")
    add_variant_args(p)
    _add_validation_args(p)
    p.add_argument("--host", default=None, help="also validate on this device: user@host, an ~/.ssh/config alias "
                   f"or pi-emulator (LIMIT default {SAMPLE_LIMIT} there)")
    _add_ssh_args(p)
    p.add_argument("--python", default=None, help="the device's python (default: the profile's, else python3)")
    p.add_argument("--profile", default=None, help="device profile name or .toml path")
    p.add_argument("--threads", type=int, default=None, help="runner threads (default: the profile's, else every core)")
    p.add_argument("--runtime", default="auto", help="runner runtime on the device (default auto)")

    p = sub.add_parser("cost", help="the paper's per-layer cost table (Mult-Adds, parameters)")
    p.add_argument("--arch", default="v1", help=arch_help())
    p.add_argument("--alpha", default="1.0")
    p.add_argument("--res", default=None)
    p.add_argument("--rho", default=None)
    p.add_argument("--classes", type=int, default=1000, help="classifier width (default %(default)s: ImageNet's)")
    p.add_argument("--json", type=Path, default=None, help="also write the table as JSON here")

    p = sub.add_parser("train", help="train MobileNet on the reference task or a folder of class sub-folders")
    add_variant_args(p, task_default=TRAIN_TASK)  # without RES or RHO: TRAIN_RESOLUTION (cli.cmd_train)
    p.add_argument("--epochs", type=int, default=None,
                   help=f"default {TRAIN.epochs} (a folder of photos: {ANDROID_EPOCHS}, after {FOLDER_HEAD_EPOCHS} frozen)")
    p.add_argument("--batch-size", type=int, default=None, help="default 128 (a folder of photos: 32)")
    p.add_argument("--lr", type=float, default=None, help="default 2e-3 (a folder of photos: 5e-3, then 1e-3)")
    p.add_argument("--seed", type=int, default=TRAIN.seed)
    p.add_argument("--limit", type=int, default=None, help="use only this many training images")
    p.add_argument("--init", default=TRAIN.init, help="random (from scratch), imagenet, reference (the Fashion-MNIST "
                   "checkpoint of ARCH/ALPHA), or a checkpoint / .keras file of the same ARCH and ALPHA, any classes")
    p.add_argument("--resolutions", default=None,
                   help="train at several input sides in turn, e.g. '32 48 64 96' (RES must be one of them)")
    p.add_argument("--checkpoints", type=Path, default=None,
                   help="folder for the checkpoint (default OUT/checkpoints/<task>)")

    p = sub.add_parser("report", help="write OUT/report.md, report.html, summary.json over every variant")
    p.add_argument("--out", default=DEFAULT_OUT, type=Path)

    for name in ("bench", "bench-remote"):
        p = sub.add_parser(name, help=f"latency of every artifact of a variant ({name})")
        add_variant_args(p)
        p.add_argument("--threads", type=thread_counts, default=None,
                       help="runner threads; several ('1 2 4') time each artifact at each count (a scaling table)")
        p.add_argument("--runtime", default="auto")
        p.add_argument("--profile", default=None, help="device profile name or .toml path")
        if name == "bench":
            p.add_argument("--runs", type=int, default=DeviceProfile.runs, help="timed runs (default %(default)s)")
        else:
            p.add_argument("--host", default=None, help="user@host, an ~/.ssh/config alias or pi-emulator "
                           "(default: the device --profile names)")
            _add_ssh_args(p)
            p.add_argument("--python", default=None, help="the device's python (default: the profile's, else python3)")

    p = sub.add_parser("bench-check", help="the runner's p50 beside the official tools' (LiteRT's benchmark, a plain "
                                           "onnxruntime loop) for every artifact of a variant: ratios at 1 and 2 threads")
    add_variant_args(p)
    p.add_argument("--threads", type=thread_counts, default=None, help="thread counts (default: 1 and 2)")

    p = sub.add_parser("profile", help="time per op type and per layer of every artifact of a variant "
                                       "(LiteRT, ONNX Runtime, OpenVINO) -> profile-local.json")
    add_variant_args(p)
    p.add_argument("--threads", type=int, default=None, help="threads (default: every core)")
    p.add_argument("--runtime", action="append", default=None, choices=("litert", "onnxruntime", "openvino"),
                   help="only this runtime (repeatable; default: every installed one)")
    p.add_argument("--top", type=int, default=5, help="layers shown per artifact")

    p = sub.add_parser("android", help="photos or a variant -> android/: train or reuse (folder TASK), export, "
                                       "validate, benchmark, ship only the .tflite files that passed")
    add_variant_args(p)
    _add_validation_args(p)
    p.add_argument("--init", default="reference", help="folder TASK without --weights: what training starts from "
                   "(reference: the Fashion-MNIST checkpoint of ARCH/ALPHA, imagenet, random, or a file)")
    p.add_argument("--epochs", type=int, default=ANDROID_EPOCHS, help="end-to-end epochs when training (default %(default)s)")
    p.add_argument("--checkpoints", type=Path, default=None, help="default OUT/checkpoints/<task>")
    p.add_argument("--calib", default=None, help="folder of calibration images (default: the task's training split)")
    _calibration_flags(p)

    p = sub.add_parser("predict", help="top-k labels of images with any artifact, fed by its own recorded preprocessing")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files and/or folders (searched recursively)")
    p.add_argument("--artifact", type=Path, default=None,
                   help=".keras, .tflite or .onnx file (default: the variant's int8 .tflite under OUT)")
    p.add_argument("--top", type=int, default=PREDICT_TOP, help="labels per image (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--image-list", default=None, help="IMAGE as make passes it: one path, or several separated "
                   "by spaces (shell-style quotes around a path with spaces)")
    add_variant_args(p)

    p = sub.add_parser("mcu", help="one variant on a microcontroller: TFLite Micro's kernels, smallest arena, "
                                   "flash, the SRAM/FLASH budget, an Ethos-U NPU (Vela), the model as C source")
    add_variant_args(p)
    p.add_argument("--sram", default=MCU_SRAM, help=f"SRAM budget, e.g. 256K, 1M, 1.5M (K = 1024; default {MCU_SRAM})")
    p.add_argument("--flash", default=MCU_FLASH, help=f"flash budget (default {MCU_FLASH})")
    p.add_argument("--npu", default="none", help=f"{' | '.join(NPUS)} (default none)")
    p.add_argument("--limit", type=int, default=MCU_IMAGES,
                   help=f"held-out images run on TFLite Micro's kernels (default {MCU_IMAGES})")
    p.add_argument("--calib", default=None, help="folder of calibration images (default: the task's training split)")
    p.add_argument("--n", type=int, default=QUANT.num_samples, help="calibration samples (default %(default)s)")
    p.add_argument("--seed", type=int, default=QUANT.seed)

    p = sub.add_parser("clean", help="delete OUT, only if the pipeline created it (it holds .mobilenet_edge)")
    p.add_argument("--out", default=DEFAULT_OUT, type=Path)

    p = sub.add_parser("demo", help="the offline reference task end to end (Fashion-MNIST checkpoints)")
    p.add_argument("--out", default=DEFAULT_OUT, type=Path)
    p.add_argument("--alphas", default=_words(PAPER_ALPHAS), help="checkpoints to run (default %(default)s; missing ones are skipped)")
    p.add_argument("--archs", default=_words(DEMO_ARCHS), help="architectures whose checkpoints run (default %(default)s)")
    p.add_argument("--limit", type=int, default=None, help="held-out images for validation (default all 10,000)")
    p.add_argument("--no-bench", action="store_true")

    p = sub.add_parser("sweep", help="every variant of ARCHS x ALPHAS x RESOLUTIONS in FORMATS: parallel, "
                                     "incremental, then the report (Pareto plots)")
    p.add_argument("--task", default=SWEEP.task, help="imagenet | fashion-mnist | folder of class sub-folders "
                   "(default %(default)s)")
    p.add_argument("--archs", default=_words(SWEEP.archs), help=f"architectures among {' '.join(ARCHS)}, e.g. 'v1 v2 v3-small' (default %(default)s)")
    p.add_argument("--alphas", default=_words(SWEEP.alphas), help="width multipliers (default %(default)s)")
    p.add_argument("--resolutions", default=None, help="input sides (default 128 160 192 224; for fashion-mnist "
                   "the sides its reference checkpoints were trained at)")
    p.add_argument("--formats", default=_words(DEFAULT_FORMATS), help=f"among {' '.join(FORMATS)} (default %(default)s)")
    p.add_argument("--weights", default=None, help="imagenet | random | reference | path (default: the task's)")
    p.add_argument("--out", default=DEFAULT_OUT, type=Path)
    p.add_argument("--calib", default=None, help="folder of calibration images (default: the task's training split)")
    _calibration_flags(p)
    p.add_argument("--opset", type=int, default=SWEEP.opset, help="ONNX opset (default %(default)s)")
    _int8_flags(p)
    _add_validation_args(p, limit=SWEEP.validation.limit)
    p.add_argument("--executor", default=SWEEP.executor, help="process (this machine) | ray (default %(default)s)")
    p.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS"),
                   help="an existing Ray cluster (default $RAY_ADDRESS; none: a local Ray instance)")
    p.add_argument("--ray-resources", default=None, help="Ray resources each job asks for, as JSON: "
                   "'{\"node2\": 1}' sends the jobs to the nodes started with that custom resource")
    p.add_argument("--workers", default=None, help="parallel jobs (default: one per core)")
    p.add_argument("--threads", default=None, help="CPU threads per job (default 1; with --workers: cores/workers)")
    p.add_argument("--no-bench", action="store_true", help="skip the latency benchmarks")
    p.add_argument("--bench-threads", default=None, help="runner threads (default: every core); several "
                   "('1 2 4') time each artifact at each count")
    p.add_argument("--runs", default=str(SWEEP.bench_runs), help="timed runs per artifact (default %(default)s)")
    p.add_argument("--targets", default=_words(SWEEP.targets), help="where to benchmark: 'local', device profiles "
                   "with a host (pi-emulator), ssh hosts or aliases, e.g. 'local pi-emulator' (default %(default)s)")
    p.add_argument("--sram", default=MCU_SRAM, help=f"TARGETS=mcu: SRAM budget (default {MCU_SRAM})")
    p.add_argument("--flash", default=MCU_FLASH, help=f"TARGETS=mcu: flash budget (default {MCU_FLASH})")
    p.add_argument("--npu", default="none", help=f"TARGETS=mcu: {' | '.join(NPUS)} (default none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--strict", action="store_true", help="exit 1 when an artifact fails its gate, too")
    return ap
