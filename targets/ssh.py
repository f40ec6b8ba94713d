"""A device over ssh as a target (`ssh`: a Raspberry Pi, any Linux board; the emulated Pi builds on it).

Benchmark every artifact of a variant there (bench_remote) or run fixed inputs through them (predict_ssh).
The steps, each one ssh command (OpenSSH client, argv lists; the remote command line is built with
shlex.quote, so no file name or option is ever interpreted by the device's shell):
  1. probe the device's python for numpy and the runtimes (fails early with the pip command to run)
  2. mktemp -d on the device
  3. copy the runner and the artifacts there (a tar stream over ssh: needs only `tar` on the device)
  4. run the runner once per runtime, read its JSON from stdout
  5. with dump_outputs, fetch the saved inputs/outputs (.npy)
  6. remove the remote folder, also after a failure or a timeout
then write variant_dir/benchmark-ssh-<host>.json.
"""
from __future__ import annotations

import io
import logging
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Collection, Sequence
from pathlib import Path

from mobilenet_edge.pipeline.artifacts import write_bytes, write_json
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.targets import plan
from mobilenet_edge.targets.predict import Predictions, collect, parse_predictions, predict_argv
from mobilenet_edge.targets.target import Given, Kind, Target, runner_failure

log = logging.getLogger(__name__)

_HOST = re.compile(r"^(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9][A-Za-z0-9._:-]*$")
_REMOTE_DIR = re.compile(r"^/[A-Za-z0-9._/-]+$")
_CLEANUP_TIMEOUT_S = 30


class Ssh:
    """ssh to one device with fixed options; turns ssh's own failures into one-line PipelineErrors."""

    def __init__(self, host: str, *, port: int | None = None, identity: str | None = None, strict_host_keys: bool = True,
                 known_hosts: str | None = None, connect_timeout_s: float = 10, ssh_config: str | None = None):
        """port None: ssh's own choice (an ~/.ssh/config alias's Port, else 22), as for a plain `ssh host`;
        ssh_config: a config file used instead of ~/.ssh/config (ssh -F)."""
        if not isinstance(host, str) or not _HOST.match(host):
            raise PipelineError(f"expected HOST as host or user@host, received {host!r}")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
            raise PipelineError(f"expected PORT between 1 and 65535, received {port!r}")
        if identity is not None and not Path(identity).expanduser().is_file():
            raise PipelineError(f"expected IDENTITY to be a private key file, received {identity!r} (no such file)")
        if known_hosts is not None and not Path(known_hosts).expanduser().is_file():
            raise PipelineError(f"expected KNOWN_HOSTS to be a known_hosts file, received {known_hosts!r} (no such file)")
        if ssh_config is not None and not Path(ssh_config).expanduser().is_file():
            raise PipelineError(f"expected SSH_CONFIG to be an ssh config file, received {ssh_config!r} (no such file)")
        if shutil.which("ssh") is None:
            raise PipelineError("expected the OpenSSH client on this machine, received no `ssh` command; "
                                "fix: apt-get install openssh-client")
        self.host, self.port, self.identity, self.known_hosts = host, port, identity, known_hosts
        self.where = host if port in (None, 22) else f"{host}:{port}"
        self.options = ["-F", str(Path(ssh_config).expanduser())] if ssh_config is not None else []
        # -p only when asked: it would override the Port of an ~/.ssh/config alias.
        self.options += ["-T", *(["-p", str(port)] if port is not None else []), "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, round(connect_timeout_s))}",
                        "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-o", "LogLevel=ERROR"]
        if identity is not None:
            # Only this key: an agent or ~/.ssh/id_* must not make a wrong IDENTITY look right.
            self.options += ["-i", str(Path(identity).expanduser()), "-o", "IdentitiesOnly=yes"]
        if strict_host_keys:
            self.options += ["-o", "StrictHostKeyChecking=yes"]
            if known_hosts is not None:
                self.options += ["-o", f"UserKnownHostsFile={Path(known_hosts).expanduser()}"]
        else:
            log.warning("not checking the host key of %s (strict_host_keys=False)", self.where)
            self.options += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]

    def run(self, remote: list[str] | str, step: str, *, timeout_s: float, stdin=None, runner: bool = False) -> bytes:
        """Run `remote` on the device (an argv list, quoted here, or a script of quoted parts); its stdout.
        runner: `remote` is the runner, whose crash is a ToolError (targets.target.runner_failure)."""
        proc = self.run_unchecked(remote, step, timeout_s=timeout_s, stdin=stdin)
        if proc.returncode != 0:
            raise self.failure(proc.returncode, proc.stderr.decode(errors="replace"), step, runner=runner)
        return proc.stdout

    def run_unchecked(self, remote: list[str] | str, step: str, *, timeout_s: float,
                      stdin=None) -> subprocess.CompletedProcess:
        command = remote if isinstance(remote, str) else shlex.join(remote)
        argv = ["ssh", *self.options, "--", self.host, command]
        log.debug("%s: %s", step, shlex.join(argv))
        try:
            return subprocess.run(argv, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                  capture_output=True, timeout=max(timeout_s, 1))
        except subprocess.TimeoutExpired:
            raise PipelineError(f"expected {step} on {self.where} to finish within {timeout_s:.0f} s, "
                                f"received a timeout") from None

    def failure(self, code: int, stderr: str, step: str, runner: bool = False) -> PipelineError:
        lines = [l.strip() for l in stderr.splitlines() if l.strip() and not set(l.strip()) <= {"@"}]
        last = lines[-1] if lines else f"exit status {code}"
        text = stderr.lower()
        if code == 255:  # ssh's own failure: connection, authentication or host key
            if "host identification has changed" in text or "has changed and you have requested strict" in text:
                return PipelineError(
                    f"expected the host key of {self.where} recorded in {self.known_hosts or '~/.ssh/known_hosts'}, "
                    f"received a different key (a reinstalled device or a man in the middle); if expected: "
                    f"ssh-keygen -R {shlex.quote(self._key_name())}")
            if "host key is known" in text or "host key verification failed" in text:
                return PipelineError(
                    f"expected a known host key for {self.where} in {self.known_hosts or '~/.ssh/known_hosts'}, "
                    f"received an unknown host; fix: ssh-keyscan{f' -p {self.port}' if self.port else ''} {self.host.split('@')[-1]} "
                    f">> ~/.ssh/known_hosts (after checking its fingerprint), or pass known_hosts")
            if "permission denied" in text or "too many authentication failures" in text:
                key = self.identity or "your default ssh keys"
                return PipelineError(f"expected {self.where} to accept the key {key}, received {last!r} "
                                     f"(refused key: add the .pub to the device's ~/.ssh/authorized_keys)")
            for cause in ("connection refused", "no route to host", "could not resolve hostname",
                          "name or service not known", "network is unreachable", "connection timed out",
                          "operation timed out", "connection closed", "connection reset"):
                if cause in text:
                    return PipelineError(f"expected an ssh server at {self.where}, received {last!r} (unreachable host)")
            # 255 is also what a remote command may exit with (qemu does after a fatal signal)
        if code == 124:  # coreutils `timeout` on the device
            return PipelineError(f"expected {step} on {self.where} to finish in time, received a timeout")
        if code == 127:
            return PipelineError(f"expected {step} on {self.where} to find its command, received {last!r}")
        if runner:  # its own refusal (exit 2) is bad input; dying of a signal or any other code, a crash
            return runner_failure(code, stderr, step, self.where)
        return PipelineError(f"expected {step} on {self.where} to succeed, received {last!r}")

    def _key_name(self) -> str:
        name = self.host.split("@")[-1]
        return name if self.port in (None, 22) else f"[{name}]:{self.port}"


class SshHost(Kind):
    """A device over ssh: a Raspberry Pi, any Linux board, an ~/.ssh/config alias."""
    name = "ssh"
    example = "pi@raspberrypi.local"

    def make(self, name: str, given: Given) -> Target:
        if not given.address:
            raise PipelineError(f"expected ssh:<user@host or alias>, received {name!r}")
        prof = given.profile
        target = Target(name, self, target_name(given.address), address=given.address, port=given.port,
                        identity=given.identity, known_hosts=given.known_hosts, ssh_config=given.ssh_config,
                        strict_host_keys=given.strict_host_keys,
                        python=given.python or (prof.python if prof else "python3"), profile=prof)
        connect(target)  # a bad HOST, PORT, IDENTITY, ... is rejected now, before any work
        return target

    def probe(self, target: Target, timeout_s: float = 120) -> plan.PythonInfo:
        return probe_device(connect(target, min(10.0, timeout_s)), target.python, timeout_s)

    def bench(self, target: Target, variant_dir: Path, **settings) -> Path:
        return bench_remote(variant_dir, target, **settings)

    def predict(self, target: Target, models: list[Path], inputs: Path, **settings) -> Predictions:
        return predict_ssh(models, inputs, target, **settings)


KIND = SshHost()


def connect(target: Target, connect_timeout_s: float = 10) -> Ssh:
    """The ssh client for `target` (checks its settings)."""
    return Ssh(target.address, port=target.port, identity=target.identity, strict_host_keys=target.strict_host_keys,
               known_hosts=target.known_hosts, connect_timeout_s=connect_timeout_s, ssh_config=target.ssh_config)


def bench_remote(variant_dir: Path, target: Target, *, threads: int | Sequence[int] | None = None,
                 runtime: str = "auto", runs: int | None = None, timeout_s: float = 600,
                 dump_outputs: Path | None = None, only: Collection[str] | None = None) -> Path:
    """Run benchmarks/runner.py on the ssh `target` for every .tflite/.onnx artifact of `variant_dir`.

    Args:
      target: an ssh Target (targets.registry.resolve_target): host, port, keys, python and profile.
      threads, runtime, runs: default to the profile's (else the runner's default, "auto", 100);
        a sequence of thread counts times every artifact at each.
        runtime="auto" picks per format the profile's preferred runtime that is installed on the device.
      timeout_s: for the whole benchmark; the remote folder is removed even after a timeout.
      dump_outputs: a local folder for the runner's seeded inputs and outputs (<model>.input/.output.npy).
      only: file names to measure; the other artifacts keep their results from the existing file (the sweep
        re-measures only what changed). None: every artifact.
    Returns: variant_dir/benchmark-ssh-<host>.json.
    Raises: PipelineError with one line naming the cause: unreachable host, refused key, host key,
      timeout, or a missing numpy/runtime (with the pip command that installs it); ToolError when the
      runner crashes on the device.
    """
    variant_dir = Path(variant_dir)
    plan.check_threads(threads)
    if not timeout_s or timeout_s <= 0:
        raise PipelineError(f"expected timeout_s > 0, received {timeout_s!r}")
    prof, python = target.profile, target.python
    threads = threads if threads is not None else (prof.threads if prof else None)
    warmup = prof.warmup if prof else 10
    runs = runs if runs is not None else (prof.runs if prof else 100)
    artifacts = plan.artifacts_of(variant_dir)
    kept = plan.kept_results(variant_dir / target.file, artifacts, only)
    if only is not None:
        artifacts = [a for a in artifacts if a.name in set(only)]
        if not artifacts:
            raise PipelineError(f"expected {', '.join(sorted(only)) or 'a file'} in {variant_dir}, received no such artifact")
    if not plan.RUNNER.is_file():
        raise PipelineError(f"expected the runner at {plan.RUNNER}, received no such file")
    ssh = connect(target, min(10.0, timeout_s))
    remaining = _deadline(timeout_s, f"the benchmark on {ssh.where}")
    py = _remote_path(python)

    # 1. probe
    info = probe_device(ssh, python, remaining())
    if prof and prof.arch and info.machine != prof.arch:
        log.warning("profile %s expects %s, %s reports %s", prof.name, prof.arch, ssh.where, info.machine)
    runs_planned = plan.plan_runs(artifacts, info, runtime=runtime, preference=target.runtimes, where=ssh.where,
                                  python=python)
    # 2. remote folder
    remote_dir = remote_folder(ssh, remaining())
    try:
        # 3. copy
        _copy(ssh, [*plan.runner_files(), *artifacts], remote_dir, remaining())
        # 4. run
        reports = []
        dump_dir = f"{remote_dir}/outputs" if dump_outputs is not None else None
        for count, run in ((c, r) for c in plan.thread_counts(threads) for r in runs_planned):
            log.info("benchmarking %d artifact(s) with %s on %s", len(run.models), run.runtime, ssh.where)
            argv = [*py, f"{remote_dir}/runner.py", *plan.runner_argv(
                [f"{remote_dir}/{m.name}" for m in run.models], run.runtime, threads=count, warmup=warmup,
                runs=runs, dump_outputs=dump_dir)]
            left = remaining()
            out = ssh.run(_with_timeout(argv, left), f"the runner ({run.runtime})", timeout_s=left + 10, runner=True)
            reports.append(plan.parse_report(out.decode(errors="replace"), ssh.where))
        # 5. outputs
        if dump_outputs is not None:
            out = ssh.run(["tar", "-c", "-f", "-", "-C", dump_dir, "."], "fetching the outputs", timeout_s=remaining())
            _untar_npy(out, Path(dump_outputs))
    finally:
        # 6. cleanup, whatever happened above
        remove_remote_folder(ssh, remote_dir)

    device = {"host": target.address, "port": target.port, "python": python, "profile": prof.name if prof else None}
    merged = plan.merge_reports(reports, target.label, folder=variant_dir, device=device)
    if only is not None:
        merged["results"] = sorted(kept + merged["results"], key=lambda r: r["model"])
    path = write_json(variant_dir / target.file, merged)
    log.info("wrote %s", path)
    return path


def predict_ssh(models: list[Path], inputs: Path, target: Target, *, threads: int | None = None,
                runtime: str = "auto", timeout_s: float = 1800) -> Predictions:
    """`runner.py --predict` on the device: probe, copy (runner, models, chunks), run, fetch outputs, remove the
    folder (also after a failure or a timeout: nothing is left on the device)."""
    ssh = connect(target, min(10.0, timeout_s))
    remaining = _deadline(timeout_s, f"the device validation on {ssh.where}")
    info = probe_device(ssh, target.python, remaining())
    runs = plan.plan_runs(models, info, runtime=runtime, preference=target.runtimes, where=ssh.where,
                          python=target.python, also=False)  # one output per file
    chunks = sorted(p for p in Path(inputs).iterdir() if p.is_file())
    remote_dir = remote_folder(ssh, remaining())
    try:
        _copy(ssh, [*plan.runner_files(), *models, *chunks], remote_dir, remaining())
        reports = []
        for run in runs:
            log.info("running %d artifact(s) with %s on %s", len(run.models), run.runtime, ssh.where)
            argv = [*_remote_path(target.python), f"{remote_dir}/runner.py",
                    *predict_argv([f"{remote_dir}/{m.name}" for m in run.models], run.runtime, remote_dir, threads)]
            left = remaining()
            out = ssh.run(_with_timeout(argv, left), f"the runner --predict ({run.runtime})", timeout_s=left + 10,
                          runner=True)
            reports.append(parse_predictions(out.decode(errors="replace"), ssh.where))
        out = ssh.run(["tar", "-c", "-f", "-", "-C", f"{remote_dir}/outputs", "."], "fetching the outputs",
                      timeout_s=remaining())
        with tempfile.TemporaryDirectory(prefix="predict-ssh-") as tmp:
            _untar_npy(out, Path(tmp))
            return collect(reports, Path(tmp), runs, ssh.where)
    finally:
        remove_remote_folder(ssh, remote_dir)


def probe_device(ssh: Ssh, python: str, timeout_s: float) -> plan.PythonInfo:
    """What `python` on the device has: numpy and the runtimes (PipelineError when python itself is missing)."""
    proc = ssh.run_unchecked([*_remote_path(python), "-c", plan.PROBE], "the python probe", timeout_s=timeout_s)
    if proc.returncode == 127:
        raise PipelineError(f"expected {python} on {ssh.where}, received no such command; fix: install python3 "
                            f"there (sudo apt install python3) or pass the device's python")
    if proc.returncode != 0:
        raise ssh.failure(proc.returncode, proc.stderr.decode(errors="replace"), "the python probe")
    return plan.PythonInfo.from_json(proc.stdout.decode(errors="replace"), ssh.where)


def remote_folder(ssh: Ssh, timeout_s: float) -> str:
    """A fresh folder on the device (mktemp -d); the caller removes it with remove_remote_folder."""
    remote_dir = ssh.run(["mktemp", "-d", "-t", "mobilenet-edge.XXXXXX"], "mktemp -d", timeout_s=timeout_s)
    remote_dir = remote_dir.decode().strip()
    if not _REMOTE_DIR.match(remote_dir):
        raise PipelineError(f"expected an absolute folder from mktemp -d on {ssh.where}, received {remote_dir!r}")
    return remote_dir


def remove_remote_folder(ssh: Ssh, remote_dir: str) -> None:
    try:
        ssh.run(["rm", "-rf", "--", remote_dir], "removing the remote folder", timeout_s=_CLEANUP_TIMEOUT_S)
    except PipelineError as exc:
        log.warning("could not remove %s on %s: %s", remote_dir, ssh.where, exc)


def target_name(host: str) -> str:
    """`ssh-<host>` as file names use it: benchmark-ssh-127.0.0.1.json, validation-ssh-pi.json."""
    return "ssh-" + re.sub(r"[^A-Za-z0-9._-]", "_", host.split("@")[-1])


def _remote_path(python: str) -> list[str]:
    """The python command as argv; `~/x` becomes `x`, relative to the home folder ssh starts in."""
    argv = shlex.split(python)
    if not argv:
        raise PipelineError(f"expected a python command for the device, received {python!r}")
    if argv[0].startswith("~/"):
        argv[0] = argv[0][2:]
    return argv


def _with_timeout(argv: list[str], seconds: float) -> str:
    """`argv` under the device's `timeout` when it has one, so a stuck runner dies with our deadline."""
    cmd = shlex.join(argv)
    return (f"if command -v timeout >/dev/null 2>&1; then exec timeout -k 5 {int(seconds) + 1} {cmd}; "
            f"else exec {cmd}; fi")


def _deadline(timeout_s: float, what: str):
    """A function giving the seconds left of `timeout_s` from now; PipelineError once they are spent."""
    deadline = time.monotonic() + timeout_s

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise PipelineError(f"expected {what} to finish within {timeout_s:g} s, received a timeout")
        return left
    return remaining


def _copy(ssh: Ssh, files: list[Path], remote_dir: str, timeout_s: float) -> None:
    """`files` into `remote_dir` as one tar stream over ssh (needs only `tar` on the device)."""
    with tempfile.TemporaryFile() as bundle:
        _tar(files, bundle)
        bundle.seek(0)
        log.info("copying %d file(s) to %s:%s", len(files), ssh.where, remote_dir)
        ssh.run(["tar", "-x", "-f", "-", "-C", remote_dir], "copying the files", stdin=bundle, timeout_s=timeout_s)


def _tar(files: list[Path], fileobj) -> None:
    # ustar: read by GNU tar and BusyBox tar alike; names are flat (the runner and artifact names), but for
    # (path, name) pairs: the runner's runtimes/ folder.
    with tarfile.open(fileobj=fileobj, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for f in files:
            f, name = f if isinstance(f, tuple) else (f, f.name)
            info = tar.gettarinfo(str(f), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isdir():
                tar.addfile(info)
                continue
            with open(f, "rb") as fh:
                tar.addfile(info, fh)


def _untar_npy(data: bytes, dest: Path) -> None:
    """Write the .npy members of a tar stream into `dest`, by base name only (never a path from the device)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        for member in tar:
            name = Path(member.name).name
            if member.isfile() and name.endswith(".npy") and not name.startswith("."):
                write_bytes(dest / name, tar.extractfile(member).read())
