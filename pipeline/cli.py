"""`mobilenet-edge`: the command line. Parses arguments, calls one library function, prints the result.

Only here are exceptions turned into a one-line `error: ...` and a non-zero exit code.
"""
from __future__ import annotations

import json
import logging
import signal
import sys
import traceback
import warnings
from pathlib import Path

from mobilenet_edge.pipeline.config import (FORMATS, SAMPLE_LIMIT, TRAIN_RESOLUTION, ExportConfig, QuantConfig, Variant,
                                            resolution_from)
from mobilenet_edge.pipeline.cli_errors import EXIT_BUG, EXIT_OS, EXIT_TOOL, EXIT_USAGE, image_list, os_error_message
from mobilenet_edge.pipeline import show
from mobilenet_edge.pipeline.cli_args import parser, thread_counts
from mobilenet_edge.pipeline.cli_native_logs import quiet_native_logs
from mobilenet_edge.pipeline.errors import PipelineError, ToolError

log = logging.getLogger("mobilenet-edge")


def _variant(args) -> Variant:
    from mobilenet_edge.calibration.tasks import resolve_task

    task = resolve_task(args.task)
    weights = args.weights or task.default_weights
    resolution = resolution_from(args.res, args.rho)
    if weights == "reference" and args.res in (None, "") and args.rho in (None, ""):
        resolution = _reference_resolution(task, args.alpha, args.arch) or resolution
    return Variant(alpha=args.alpha, resolution=resolution, task=args.task, weights=weights, arch=args.arch)


def _reference_resolution(task, alpha, arch) -> int | None:
    """The reference checkpoints' training resolution is the task's default input side."""
    from mobilenet_edge.pipeline import build

    try:
        return build.checkpoint_info(build.reference_checkpoint(task.kind, float(alpha), arch)).get("resolution")
    except (PipelineError, ValueError):
        return None  # Variant() reports the bad alpha / missing checkpoint with its own message


def _ray_resources(text: str | None) -> dict | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None  # not JSON: the same one-line error as a JSON value of the wrong shape
    if isinstance(value, dict) and all(isinstance(v, (int, float)) and v > 0 for v in value.values()):
        return value
    raise PipelineError(f"expected RAY_RESOURCES as a JSON object of positive amounts, received {text!r}")


def _validation_config(args):
    from mobilenet_edge.benchmarks.runtimes import also_measured
    from mobilenet_edge.pipeline.config import Gates, ValidationConfig

    # --runtimes, else for `validate` one more row per .onnx file for each runtime measured beside ONNX Runtime
    # here (OpenVINO when installed).
    return ValidationConfig(limit=args.limit, eval_dir=args.eval, gates=Gates(
        args.gate_fp32, args.gate_fp16, args.gate_int8_drop, args.gate_int8_agreement),
        runtimes=tuple(r.strip() for r in args.runtimes.split(",") if r.strip())
        or (also_measured() if args.command == "validate" else ()))


def _recipe_config(args, formats, validation=None, bench=None, report=False):
    from mobilenet_edge.pipeline.config import RecipeConfig

    return RecipeConfig(
        variant=_variant(args),
        export=ExportConfig(formats=tuple(formats), opset=args.opset, out=args.out),
        quant=QuantConfig(io_dtype=args.int8_io, per_channel=not args.per_tensor_only, num_samples=args.n,
                          seed=args.seed, calib_dir=_calib(args), diagnose=args.diagnose or args.keep_float > 0,
                          keep_float=args.keep_float, **_int8_extras(args)),
        per_tensor=args.per_tensor, metadata=not args.no_metadata,
        validation=validation, bench_threads=bench, report=report,
    )


def _calib(args) -> str | None:
    """CALIB, or the folder of the pinned archive CALIB_URL + CALIB_SHA256 (downloaded once, only when asked)."""
    if not (args.calib_url or args.calib_sha256):
        return args.calib or None
    if args.calib or not (args.calib_url and args.calib_sha256):
        raise PipelineError("expected CALIB_URL and CALIB_SHA256 together (and no CALIB), received "
                            f"CALIB={args.calib or ''!r} CALIB_URL={args.calib_url or ''!r} "
                            f"CALIB_SHA256={args.calib_sha256 or ''!r}")
    from mobilenet_edge.calibration.download import fetch_calibration

    return str(fetch_calibration(args.calib_url, args.calib_sha256))


def _int8_extras(args) -> dict:
    """Data-free calibration and BUDGET settings (issue 13), shared by export and sweep."""
    return {"synthetic_samples": args.synthetic_n, "synthetic_steps": args.synthetic_steps, "budget": args.budget}


def cmd_export(args) -> int:
    from mobilenet_edge.pipeline.recipe import export_variant

    formats = [f.strip() for f in args.formats.split(",") if f.strip()] if args.formats != "all" else list(FORMATS)
    result = export_variant(_recipe_config(
        # BUDGET is judged on the held-out images: the search needs them, and then validates what it chose.
        args, formats, validation=_validation_config(args) if args.validate or args.budget is not None else None,
        bench=args.bench_threads, report=args.report))
    print(show.exported(result))
    text, within = show.budgets(result.artifacts)
    if text:
        print(text)
    code = _print_validation(result.validation)
    return 1 if not within else code


def _writable(folder: Path) -> None:
    """A read-only or full variant folder fails now (exit 1), not after the work, on writing its record."""
    from mobilenet_edge.pipeline.recipe import ensure_writable

    if folder.is_dir():
        ensure_writable(folder)


def _print_validation(result) -> int:
    if result is None:
        return 0
    print(show.verdict(result))
    return 0 if result.passed else 1


def cmd_validate(args) -> int:
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.recipe import variant_dir
    from mobilenet_edge.pipeline.validate import validate

    variant = _variant(args)
    device = _device(args) if args.host else None  # a bad HOST is said before the validation here runs
    _writable(variant_dir(args.out, resolve_task(args.task), variant))
    result = validate(variant_dir(args.out, resolve_task(args.task), variant), resolve_task(args.task), _validation_config(args))
    print(show.validation_table(json.loads(result.path.read_text())))
    code = _print_validation(result)
    if device is not None:
        _validate_on_device(args, device, variant_dir(args.out, resolve_task(args.task), variant), resolve_task(args.task))
    return code


def _validate_on_device(args, device, folder: Path, task) -> None:
    """`validate --host`: the same images on the device; differences are findings (printed, exit code kept)."""
    from mobilenet_edge.pipeline.config import ValidationConfig
    from mobilenet_edge.pipeline.validate.device import validate_on_device

    result = validate_on_device(folder, task, device, ValidationConfig(limit=args.limit or SAMPLE_LIMIT, eval_dir=args.eval),
                                threads=args.threads, runtime=args.runtime)
    print(show.device_validation(json.loads(result.path.read_text()), result.path))


NO_HOST = ("expected --host, received none (HOST=user@host, an ~/.ssh/config alias or pi-emulator; or a PROFILE "
           "that names its device)")


def _device(args):
    """HOST=, PORT=, IDENTITY=, ..., PROFILE= as a device Target (targets.registry.resolve_target)."""
    from mobilenet_edge.targets.registry import resolve_target

    target = resolve_target(host=args.host or None, port=args.port, identity=args.identity, known_hosts=args.known_hosts,
                            ssh_config=args.ssh_config, strict_host_keys=not args.no_host_key_check,
                            python=args.python, profile=args.profile)
    if target.is_local:
        raise PipelineError(f"expected a device for --host, received {args.host!r} (this machine)" if args.host else NO_HOST)
    return target


def cmd_cost(args) -> int:
    from mobilenet_edge.pipeline.cost import table as cost

    # cost_table validates ARCH, the arch's alpha range and RES itself (one-line PipelineError)
    report = cost.cost_table(args.alpha, resolution_from(args.res, args.rho), args.classes, arch=args.arch)
    print(cost.format_table(report))
    if args.json:
        cost.write_cost(report, args.json)
        print(f"written: {args.json}")
    return 0


def cmd_train(args) -> int:
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.train import small_data, train
    from mobilenet_edge.pipeline.config import TrainConfig

    task = resolve_task(args.task)
    given_side = args.res not in (None, "") or args.rho not in (None, "")
    variant = Variant(alpha=args.alpha, resolution=resolution_from(args.res, args.rho) if given_side else TRAIN_RESOLUTION,
                      task=args.task, weights="random", arch=args.arch)
    sides = tuple(_integers(args.resolutions, "RESOLUTIONS")) if args.resolutions else ()
    given = {k: v for k, v in (("batch_size", args.batch_size), ("learning_rate", args.lr), ("epochs", args.epochs))
             if v is not None}
    # A folder of photos gets the small-dataset practice (pipeline.train.finetune) unless told otherwise.
    cfg = TrainConfig(**small_data(task, args.init, seed=args.seed, limit=args.limit,
                                   resolutions=sides, **given))
    # Not into pipeline/checkpoints by default: a training run must not overwrite the committed references.
    if not args.checkpoints:
        from mobilenet_edge.pipeline.clean import claim_output

        claim_output(args.out)
    result = train(variant, task, cfg, args.checkpoints or args.out / "checkpoints" / task.slug)
    print(f"checkpoint: {result.checkpoint} — float top-1 {100 * result.test_top1:.2f} % on the test split ({result.seconds:.0f} s)")
    print(f"use it: make all ARCH={variant.arch} ALPHA={variant.alpha} RES={variant.resolution} TASK={args.task} "
          f"WEIGHTS={result.checkpoint}")
    return 0


def _integers(text: str, what: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise PipelineError(f"expected {what} to be whole numbers separated by spaces, received {text!r}") from None


def cmd_report(args) -> int:
    from mobilenet_edge.pipeline.report import write_report

    result = write_report(args.out)
    print(f"report: {result.markdown} and {result.html}; summary: {result.summary}")
    return 0


def cmd_bench(args) -> int:
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.recipe import variant_dir
    from mobilenet_edge.targets.registry import resolve_target

    folder = variant_dir(args.out, resolve_task(args.task), _variant(args))
    _writable(folder)
    target = resolve_target("local", profile=args.profile)
    print(show.bench(target.bench(folder, threads=args.threads, runtime=args.runtime, runs=args.runs)))
    return 0


def cmd_profile(args) -> int:
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.recipe import variant_dir
    from mobilenet_edge.targets.op_times import profile_local

    folder = variant_dir(args.out, resolve_task(args.task), _variant(args))
    _writable(folder)
    print(show.op_profile(profile_local(folder, threads=args.threads, runtimes=args.runtime), args.top))
    return 0


def cmd_bench_remote(args) -> int:
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.recipe import variant_dir

    from mobilenet_edge.targets.plan import artifacts_of

    if not (args.host or args.profile):  # as argparse would say it, before anything else
        raise PipelineError(NO_HOST)
    folder = variant_dir(args.out, resolve_task(args.task), _variant(args))
    artifacts_of(folder)  # a variant not exported yet is the first thing to say, before the device is looked at
    target = _device(args)
    print(show.bench(target.bench(folder, threads=args.threads, runtime=args.runtime)))
    return 0


def cmd_bench_check(args) -> int:
    """The runner against the official tools on one variant's files (benchmarks/reference_check.py)."""
    from mobilenet_edge.benchmarks import reference_check
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.recipe import variant_dir
    from mobilenet_edge.targets.plan import artifacts_of, thread_counts as counts

    folder = variant_dir(args.out, resolve_task(args.task), _variant(args))
    artifacts_of(folder)  # a missing or empty folder is the usual one-line error, before any timing
    threads = [] if args.threads is None else ["--threads", *map(str, counts(args.threads))]
    return reference_check.main([str(folder), *threads])


def cmd_android(args) -> int:
    """Photos (or a task) to android/: train or reuse (folder TASK without WEIGHTS), export, validate, benchmark,
    ship only what passed (pipeline.android_task)."""
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.android_task import android_from_task
    from mobilenet_edge.pipeline.config import AndroidTaskConfig
    from mobilenet_edge.pipeline.train import small_data
    from mobilenet_edge.pipeline.config import TrainConfig

    task = resolve_task(args.task)
    variant = _variant(args)
    if task.kind == "folder" and not args.weights:
        variant = Variant(variant.alpha, variant.resolution, variant.task, "", variant.arch)  # train or reuse
    train_cfg = TrainConfig(**small_data(task, args.init, epochs=args.epochs, resolution_sweep=False))
    result = android_from_task(AndroidTaskConfig(
        variant=variant, train=train_cfg, out=args.out, checkpoints=args.checkpoints,
        quant=QuantConfig(io_dtype=args.int8_io, num_samples=args.n, calib_dir=args.calib or None),
        validation=_validation_config(args)))
    print(show.android(result))
    return 0


def cmd_predict(args) -> int:
    """Top-k labels per image; without --artifact, the variant's int8 .tflite (the file an app ships)."""
    from mobilenet_edge.pipeline.predict import default_artifact, predict

    if args.artifact is None:
        from mobilenet_edge.calibration.tasks import resolve_task
        from mobilenet_edge.pipeline.recipe import variant_dir

        args.artifact = default_artifact(variant_dir(args.out, resolve_task(args.task), _variant(args)))
    result = predict(args.artifact, [*args.images, *image_list(args.image_list)], top_k=args.top)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(show.predictions(result))
    return 0


def cmd_clean(args) -> int:
    from mobilenet_edge.pipeline.clean import clean_output

    result = clean_output(args.out)
    print(f"removed {result.path}" if result.removed else f"nothing to remove: {result.path} does not exist")
    return 0


def cmd_demo(args) -> int:
    """The main job: the offline reference task end to end, for the committed checkpoints of ARCHS."""
    from mobilenet_edge.pipeline.archs import get_arch
    from mobilenet_edge.pipeline.demo import run_demo
    from mobilenet_edge.pipeline.sweep.grid import parse_values

    archs = tuple(get_arch(a).key for a in parse_values(args.archs, "ARCHS", str))  # an unknown one: one line
    result = run_demo(args.out, alphas=parse_values(args.alphas, "ALPHAS"), archs=archs, limit=args.limit,
                      bench=not args.no_bench)
    print(f"report: {result.report}")
    for line in result.summary:
        print(line)
    return 0 if result.passed else 1


def cmd_sweep(args) -> int:
    """Every variant of ARCHS x ALPHAS x RESOLUTIONS in FORMATS; exit 1 when a variant failed (or, with
    --strict, when an artifact fails its gate: without it a gate failure is a finding the report shows)."""
    from mobilenet_edge.pipeline.sweep import parse_values, run_sweep
    from mobilenet_edge.pipeline.config import McuBudget, SweepConfig

    def count(text, what):
        value = parse_values(text, what, int) if text not in (None, "") else (None,)
        if len(value) != 1 or (value[0] is not None and value[0] < 1):
            raise PipelineError(f"expected {what} to be one whole number >= 1, received {what}={text!r}")
        return value[0]

    cfg = SweepConfig(
        task=args.task, archs=parse_values(args.archs, "ARCHS", str), alphas=parse_values(args.alphas, "ALPHAS"),
        resolutions=parse_values(args.resolutions, "RESOLUTIONS", int) if args.resolutions else None,
        formats=parse_values(args.formats, "FORMATS", str), weights=args.weights or None, out=args.out,
        quant=QuantConfig(io_dtype=args.int8_io, num_samples=args.n, seed=args.seed, calib_dir=_calib(args),
                          **_int8_extras(args)),
        opset=args.opset, validation=_validation_config(args), bench=not args.no_bench,
        bench_threads=thread_counts(args.bench_threads or ""), bench_runs=count(args.runs, "RUNS"),
        executor=args.executor, workers=count(args.workers, "WORKERS"), threads=count(args.threads, "THREADS"),
        ray_address=args.ray_address or None, ray_resources=_ray_resources(args.ray_resources), targets=parse_values(args.targets, "TARGETS", str),
        mcu=McuBudget.parse(args.sram, args.flash, args.npu))
    result = run_sweep(cfg, progress=not args.no_progress)
    print(show.sweep(result, cfg.targets, args.strict))
    return 1 if result.failed or (args.strict and result.gates_failed) else 0


def cmd_mcu(args) -> int:
    """One variant on a microcontroller (pipeline.mcu); exit 1 when it does not fit SRAM / FLASH."""
    from mobilenet_edge.pipeline.config import McuBudget, McuConfig
    from mobilenet_edge.pipeline.mcu import mcu_stage

    budget = McuBudget.parse(args.sram, args.flash, args.npu)
    result = mcu_stage(McuConfig(_variant(args), budget, args.out, args.n, args.seed, args.calib or None, args.limit))
    print(show.mcu(result))
    return 0 if result.fits else 1


COMMANDS = {"export": cmd_export, "validate": cmd_validate, "cost": cmd_cost, "train": cmd_train,
            "report": cmd_report, "bench": cmd_bench, "bench-remote": cmd_bench_remote, "bench-check": cmd_bench_check,
            "android": cmd_android, "profile": cmd_profile,
            "predict": cmd_predict, "clean": cmd_clean, "demo": cmd_demo, "sweep": cmd_sweep,
            "mcu": cmd_mcu}


class _StageFormatter(logging.Formatter):
    """Log lines named by stage (pipeline.convert.tflite), without the installed package's prefix."""

    def format(self, record):
        record.stage = record.name.removeprefix("mobilenet_edge.")
        return super().format(record)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # Started with Ctrl-C ignored (a background job of a non-interactive shell, some CI runners), a command would
    # never stop on SIGINT and run to the end; its contract is that Ctrl-C stops it, nothing partial left.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_StageFormatter("%(levelname).1s %(stage)s: %(message)s"))
    if not args.verbose:  # the converters' own progress chatter says nothing a user acts on
        for name in ("tensorflow", "tf2onnx", "onnxruntime", "absl", "h5py"):
            logging.getLogger(name).setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"(tensorflow|keras|tf2onnx)")
    with quiet_native_logs(enabled=not args.verbose):  # TensorFlow's and LiteRT's C++ log lines: -v only
        return _run(args)


def _run(args) -> int:
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("error: interrupted; finished artifacts are complete, nothing partial was left", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns every failure into one line
        line, code = _error_line(exc)
        if args.verbose:  # the whole chain: the tool's or the bug's own traceback first
            traceback.print_exception(exc, file=sys.stderr)
        print(f"error: {line}", file=sys.stderr)
        return code


def _error_line(exc: Exception) -> tuple[str, int]:
    """One line and an exit code: bad input 2, a converter's or runtime's failure 3, the system (disk,
    permissions) 1, a bug of this project 4."""
    if isinstance(exc, ToolError):
        return f"{exc} (a converter or runtime failed; -v shows its traceback)", EXIT_TOOL
    if isinstance(exc, PipelineError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, OSError):  # read-only or full disk, permissions: the same one line at every stage
        return os_error_message(exc), EXIT_OS
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
    text = " ".join(str(exc).split())[:200]
    return (f"expected the pipeline to finish, received an internal error{at} ({type(exc).__name__}"
            f"{': ' + text if text else ''}); this is a bug: run again with -v and report the traceback"), EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
