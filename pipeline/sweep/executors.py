"""Where a sweep's jobs run: worker processes on this machine, or Ray tasks (a local instance or a cluster).

Both run the same function, `pipeline.sweep.jobs.run_job`, on the same picklable Job, so the files they
write are the same. The sweep drives either through four calls: `submit`, `wait`, `result`, `close`.

- process: a `ProcessPoolExecutor` with the 'spawn' start method (TensorFlow's runtime does not survive
  fork). Each worker keeps TensorFlow and OpenMP to `threads` threads and, when workers × threads fit the
  cores, is pinned to its own cores: libraries that size their pools by the core count (onnxruntime's
  calibration sessions) then share those cores instead of oversubscribing the others. A worker process
  that dies (a converter's segfault) breaks the pool; the jobs it took down are run again, each alone in
  a fresh process, so only the job that kills its process fails.
- ray: `ray.init(address=RAY_ADDRESS or None)` — a local instance sized workers × threads CPUs, or the
  cluster at RAY_ADDRESS, whose nodes need the project installed (no shared filesystem: a job's input
  files and calibration samples travel to its worker and the files it writes come back through Ray's
  object store, see pipeline.sweep.ray_shipping). A task asks for `threads` CPUs (and `resources`, e.g. a
  custom resource that only some nodes have); Ray runs as many at once as the cluster has CPUs for.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from mobilenet_edge.pipeline.config import EXECUTORS
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.sweep.jobs import Job, JobResult, limit_threads, run_job

log = logging.getLogger(__name__)

RAY_OBJECT_STORE_BYTES = 200 * 2 ** 20  # jobs pass small records; the files stay on disk


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


BUSY = 0.25  # cores' worth of other programs' CPU use above which latencies are flagged as inflated


def busy_cores(window: float = 1.0) -> float | None:
    """Cores' worth of CPU time the machine spends over the next `window` seconds while this process sleeps,
    from /proc/stat (None where there is none). Unlike the 1-minute load average, which decays over a minute,
    it no longer counts worker processes that have just finished."""
    def sample():
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
        return sum(ticks), ticks[3] + ticks[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(window)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    return round((1 - (idle1 - idle0) / total) * (os.cpu_count() or 1), 2) if total > 0 else None


_running = False  # in a worker process: a job is running
_interrupted = False  # in a worker process: Ctrl-C has arrived


def _on_interrupt(signum, frame) -> None:
    """A worker's Ctrl-C. During a job: KeyboardInterrupt, so the job unwinds (temporary files removed) and the
    driver receives it as the job's result. Between jobs: a quiet exit (multiprocessing would print a traceback
    for KeyboardInterrupt). Only the first Ctrl-C counts: a second must not cut short the unwinding of the first.
    """
    global _interrupted
    if _interrupted:
        return
    _interrupted = True
    if _running:
        raise KeyboardInterrupt
    raise SystemExit(130)


def _run_in_worker(job: Job) -> JobResult:
    global _running
    _running = True
    try:
        return run_job(job)
    finally:
        _running = False


def _init_worker(threads: int, slots, pin: bool) -> None:
    signal.signal(signal.SIGINT, _on_interrupt)
    os.environ["TQDM_DISABLE"] = "1"  # progress bars of the stages would only land in the job's log
    if pin:
        slot = slots.get()
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, cores[slot * threads:(slot + 1) * threads])
    limit_threads(threads)


class ProcessExecutor:
    name = "process"

    def __init__(self, workers: int, threads: int):
        self.workers, self.threads, self.capacity = workers, threads, workers
        self._pool: ProcessPoolExecutor | None = None
        self._owner: dict[Future, ProcessPoolExecutor] = {}  # the pool each job went to

    def _new_pool(self, workers: int, pin: bool) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context("spawn")
        slots = ctx.Queue()
        for i in range(workers):
            slots.put(i)
        return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(self.threads, slots, pin))

    def submit(self, job: Job) -> Future:
        if job.attempt > 1:  # after a crash: alone in a fresh process, so that it cannot take others down
            pool = self._new_pool(1, pin=False)
        else:
            if self._pool is None:
                pin = self.workers > 1 and self.workers * self.threads <= usable_cores()
                self._pool = self._new_pool(self.workers, pin)
            pool = self._pool
        future = pool.submit(_run_in_worker, job)
        self._owner[future] = pool
        return future

    def wait(self, handles: list) -> list:
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        return list(done)

    def result(self, handle: Future, job: Job) -> JobResult:
        pool = self._owner.pop(handle, None)
        try:
            return handle.result()
        except BrokenProcessPool:
            if pool is self._pool:
                self._pool = None  # the next submit starts a fresh pool
            return JobResult.failed(job, "the worker process died (killed, out of memory or a crash in native "
                                         "code); see the variant's sweep.log", crashed=True)
        except Exception as exc:  # e.g. a result that could not be sent back
            return JobResult.failed(job, f"{type(exc).__name__}: {exc}")
        finally:
            if pool is not None and pool is not self._pool and pool not in self._owner.values():
                pool.shutdown(wait=False)  # a broken pool, or a one-job pool, with nothing left in it

    def interrupt(self) -> None:
        """Pass the driver's Ctrl-C on to the workers (a `kill -INT` of the driver alone reaches only it), so
        that closing does not wait for their jobs to finish."""
        for pool in self._pools():
            # `_processes` is the pool's own record of its worker processes; it has no public one.
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                try:
                    os.kill(process.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass

    def _pools(self) -> list:
        return list({id(p): p for p in [self._pool, *self._owner.values()] if p is not None}.values())

    def close(self, cancel: bool = False) -> None:
        for pool in self._pools():
            pool.shutdown(wait=True, cancel_futures=cancel)
        self._pool, self._owner = None, {}


class RayExecutor:
    name = "ray"

    def __init__(self, workers: int, threads: int, address: str | None = None, resources: dict | None = None):
        try:
            import ray
        except ImportError:
            raise PipelineError("expected Ray for EXECUTOR=ray, received no module named 'ray'; fix: "
                                "pip install 'mobilenet-edge[ray]' (or make setup-ray)") from None
        self._ray, self.threads = ray, threads
        self._started = not ray.is_initialized()
        if self._started:
            common = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
            try:
                if address:
                    ray.init(address=address, **common)
                else:  # a local instance sized like the process executor
                    ray.init(address="local", num_cpus=workers * threads,
                             object_store_memory=RAY_OBJECT_STORE_BYTES, **common)
            except Exception as exc:
                raise PipelineError(f"expected a Ray instance at {address or 'this machine (local)'}, received "
                                    f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None
        cpus = ray.cluster_resources().get("CPU", threads)
        self.workers = self.capacity = max(1, int(cpus // threads))
        self.address = address or "local"
        env = {"TQDM_DISABLE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
        # No retries by Ray: the sweep runs a job whose worker died once more itself, as for processes.
        from mobilenet_edge.pipeline.sweep.ray_shipping import run_shipped

        self._remote = ray.remote(run_shipped).options(num_cpus=threads, max_retries=0, resources=resources or {},
                                                       runtime_env={"env_vars": env})
        log.info("ray: %s, %g CPUs, %d task(s) at a time", self.address, cpus, self.capacity)

    def submit(self, job: Job):
        from mobilenet_edge.pipeline.sweep.ray_shipping import pack

        return self._remote.remote(*pack(job))

    def interrupt(self) -> None:
        """Ray cancels its tasks when it shuts down (close)."""

    def wait(self, handles: list) -> list:
        done, _ = self._ray.wait(handles, num_returns=1)
        return done

    def result(self, handle, job: Job) -> JobResult:
        from mobilenet_edge.pipeline.sweep.ray_shipping import unpack

        try:
            return unpack(job.recipe.export.out, self._ray.get(handle))
        except self._ray.exceptions.RayError as exc:  # the task's worker process died
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            return JobResult.failed(job, f"the Ray task failed: {first}", crashed=True)

    def close(self, cancel: bool = False) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()


def make_executor(name: str, workers: int, threads: int, address: str | None = None,
                  resources: dict | None = None):
    """The executor `name` ("process" or "ray"; `resources`: Ray resources every task asks for)."""
    if name == "process":
        return ProcessExecutor(workers, threads)
    if name == "ray":
        return RayExecutor(workers, threads, address, resources)
    raise PipelineError(f"expected EXECUTOR to be one of {', '.join(EXECUTORS)}, received EXECUTOR={name!r}")
