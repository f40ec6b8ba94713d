"""One job of a sweep, as a worker runs it: convert (the recipe's steps 1-5 for the stale formats) or validate.

The same `run_job` runs in a worker process or as a Ray task; it never raises. A failure comes back as a
JobResult with a one-line reason, and everything the job printed or logged (the converters' own chatter,
tracebacks) goes to `<variant folder>/sweep.log`.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.config import RecipeConfig

log = logging.getLogger(__name__)

LOG = "sweep.log"
QUIET = ("tensorflow", "tf2onnx", "onnxruntime", "absl", "h5py", "keras")


@dataclass(frozen=True)
class Job:
    step: str  # "convert" | "validate"
    recipe: RecipeConfig  # convert: export.formats are the formats to redo; validate: recipe.validation
    threads: int = 1  # CPU threads this job may use (TensorFlow, OpenMP, the runtimes)
    reuse: dict | None = None  # validate: the earlier validation.json whose rows may be kept
    attempt: int = 1  # 2: run again, alone, after a worker process died under it

    @property
    def variant(self) -> str:
        return self.recipe.variant.name


@dataclass(frozen=True)
class JobResult:
    step: str
    variant: str
    ok: bool
    seconds: float = 0.0
    error: str | None = None
    artifacts: tuple[dict, ...] = ()  # convert: the manifest entries of the files written
    passed: bool | None = None  # validate: every enforced gate passes
    failures: tuple[str, ...] = ()
    measured: int = 0  # validate: artifacts run on the held-out images (the others kept their rows)
    kept: int = 0
    warnings: tuple[str, ...] = ()
    crashed: bool = False  # the worker process died (no reason from the job itself)
    host: str = field(default_factory=socket.gethostname)

    @classmethod
    def failed(cls, job: Job, error: str, crashed: bool = False) -> JobResult:
        return cls(job.step, job.variant, False, error=error, crashed=crashed)


def limit_threads(threads: int) -> None:
    """Keep TensorFlow's pools to `threads` threads (and OpenMP, for libraries loaded after this).

    TensorFlow fixes its pools when it first runs an op: in a process that already ran one (a reused Ray
    worker) the earlier setting stays.
    """
    for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ[name] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError as exc:  # TensorFlow's pools exist already (a second job in this worker): they keep
        # the sizes the first job set from the same environment variables, so nothing is lost
        log.debug("TensorFlow thread pools already set up: %s", exc)


def run_job(job: Job) -> JobResult:
    """Run one job; the result says what was written, or why not. Never raises."""
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.recipe import variant_dir

    start = time.perf_counter()
    try:
        out = Path(job.recipe.export.out)
        if not out.is_dir():  # a Ray node that does not share OUT with the driver
            raise PipelineError(f"expected OUT={out} on a filesystem that this worker ({socket.gethostname()}) "
                                "shares with the sweep's driver, received no such folder")
        task = resolve_task(job.recipe.variant.task)
        folder = variant_dir(out, task, job.recipe.variant)
        folder.mkdir(parents=True, exist_ok=True)
    except PipelineError as exc:
        return JobResult.failed(job, str(exc))
    with _job_output(folder / LOG, append=job.step != "convert") as warnings:
        try:
            limit_threads(job.threads)
            log.info("%s %s (attempt %d, %d thread(s), host %s, cwd %s)", job.step, job.variant, job.attempt,
                     job.threads, socket.gethostname(), os.getcwd())
            if job.step == "convert":
                result = _convert(job, folder)
            else:
                result = _validate(job, folder, task)
        except PipelineError as exc:
            log.error("%s", exc)
            result = JobResult.failed(job, str(exc))
        except Exception as exc:  # a converter's own failure: one line back, the traceback in the log
            log.error("%s", traceback.format_exc())
            text = " ".join(str(exc).split())[:200]
            result = JobResult.failed(job, f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
    return JobResult(**{**result.__dict__, "seconds": round(time.perf_counter() - start, 2),
                        "warnings": tuple(warnings)})


def _convert(job: Job, folder: Path) -> JobResult:
    from mobilenet_edge.pipeline.manifest import read_manifest
    from mobilenet_edge.pipeline.recipe import export_variant

    result = export_variant(job.recipe)
    written = {a.path.name for a in result.artifacts}
    entries = [e for e in read_manifest(folder)["artifacts"] if e["file"] in written]
    return JobResult(job.step, job.variant, True, artifacts=tuple(entries))


def _validate(job: Job, folder: Path, task) -> JobResult:
    from mobilenet_edge.pipeline.validate import validate

    result = validate(folder, task, job.recipe.validation, reuse=job.reuse)
    doc, old = json.loads(result.path.read_text()), job.reuse or {}
    same = old and (doc.get("images_sha256"), doc.get("gates")) == (old.get("images_sha256"), old.get("gates"))
    known = {r.get("sha256") for r in old.get("artifacts", [])} if same else set()
    kept = sum(1 for r in doc["artifacts"] if r.get("sha256") in known)
    return JobResult(job.step, job.variant, True, passed=result.passed, failures=result.failures,
                     measured=len(doc["artifacts"]) - kept, kept=kept)


class _Collect(logging.Handler):
    """The job's warnings, to repeat in the driver's log next to the variant's name."""

    def __init__(self, into: list):
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record):
        if record.name.split(".")[0] in ("pipeline", "calibration", "targets"):
            self.into.append(record.getMessage())


@contextmanager
def _job_output(path: Path, append: bool):
    """Send the process's stdout/stderr (file descriptors 1 and 2: C++ logs too) and its logging to `path`."""
    warnings: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC), 0o644)
    saved = os.dup(1), os.dup(2)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    root = logging.getLogger()
    handlers = [logging.StreamHandler(sys.stderr), _Collect(warnings)]
    handlers[0].setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(name)s: %(message)s", "%H:%M:%S"))
    level = root.level
    root.setLevel(logging.INFO)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    for h in handlers:
        root.addHandler(h)
    try:
        yield warnings
    finally:
        for h in handlers:
            root.removeHandler(h)
        root.setLevel(level)
        sys.stdout.flush()
        sys.stderr.flush()
        for target, copy in zip((1, 2), saved):
            os.dup2(copy, target)
            os.close(copy)
