"""A target is data: where artifacts run, how to reach it, its runtimes and its device profile.

`Target` is the record; `Kind` is how one kind of target is reached (this machine, ssh, the emulated Pi, ...):
it turns what the user gave into a Target, probes what the device can run, benchmarks a variant and runs
fixed inputs through artifacts there. Each kind is one file (targets/local.py, targets/ssh.py,
targets/pi_emulator/__init__.py) and one line in `targets.registry.KINDS`; `targets.registry.resolve_target`
is the one way from HOST=, PORT=, PROFILE= or a TARGETS= name to a Target.

Also here: what a runner that did not finish means. Its own `error: expected …` (exit 2) is bad input (a file
it cannot read, a runtime it cannot load: PipelineError, exit 2); dying of a signal or ending with any other
code is the runtime crashing on input the pipeline accepted (ToolError, exit 3).
"""
from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

from mobilenet_edge.pipeline.config import DeviceProfile
from mobilenet_edge.pipeline.errors import PipelineError, ToolError
from mobilenet_edge.targets.plan import DEFAULT_PREFERENCE

RUNNER_REFUSED = 2  # benchmarks/runner.py's exit code after its one-line `error: expected …, received …`


@dataclass(frozen=True)
class Given:
    """What the user gave besides the target's name (None: not given, the kind's or the profile's default).

    address: what the name leaves to the kind (an ssh host, an adb serial); the others as HOST=, PORT=,
    IDENTITY=, KNOWN_HOSTS=, SSH_CONFIG=, DEVICE_PYTHON= and PROFILE= give them.
    """
    address: str | None = None
    port: int | None = None
    identity: str | None = None
    known_hosts: str | None = None
    ssh_config: str | None = None
    strict_host_keys: bool = True
    python: str | None = None
    profile: DeviceProfile | None = None


@dataclass(frozen=True)
class Target:
    """One place artifacts run. Files name it by `label` (benchmark-<label>.json, validation-<label>.json)."""
    name: str  # as the user wrote it: local, pi-emulator, pi@raspberrypi.local
    kind: Kind
    label: str  # local, ssh-<host>
    address: str | None = None  # the device: user@host or an ~/.ssh/config alias (ssh); None: this machine
    port: int | None = None
    identity: str | None = None
    known_hosts: str | None = None
    ssh_config: str | None = None
    strict_host_keys: bool = True
    python: str = "python3"  # the python the runner runs with there
    profile: DeviceProfile | None = None

    @property
    def runtimes(self) -> tuple[str, ...]:
        """Runtime preference: the profile's, else the default (first installed wins, per format)."""
        return self.profile.runtimes if self.profile else DEFAULT_PREFERENCE

    @property
    def file(self) -> str:
        return f"benchmark-{self.label}.json"

    @property
    def entry(self) -> str:
        """Its entry in sweep-state.json (this machine keeps the sweep's original `benchmark`)."""
        return "benchmark" if self.address is None else f"benchmark@{self.label}"

    @property
    def is_local(self) -> bool:
        return self.address is None

    def probe(self, timeout_s: float = 120):
        """What the target can run (for python targets a `plan.PythonInfo`)."""
        return self.kind.probe(self, timeout_s)

    def bench(self, variant_dir: Path, **settings) -> Path:
        """Benchmark every artifact of `variant_dir` there; returns variant_dir/<self.file>."""
        return self.kind.bench(self, Path(variant_dir), **settings)

    def predict(self, models: list[Path], inputs: Path, **settings):
        """Run the .npy chunks `inputs`/inputs.json names through `models` there (targets.predict.Predictions)."""
        return self.kind.predict(self, list(models), Path(inputs), **settings)


class Kind:
    """How one kind of target is reached. A new kind subclasses this in one file and is one line in
    `targets.registry.KINDS`; the registry finds it by `name` (TARGETS="<name>") or `name:<address>`."""
    name = ""
    example = ""  # a TARGETS word that names one such target (docs, tests)

    def make(self, name: str, given: Given) -> Target:
        """The Target for what the user gave; PipelineError ("expected …, received …") for what cannot be one."""
        raise NotImplementedError

    def probe(self, target: Target, timeout_s: float):
        raise NotImplementedError

    def bench(self, target: Target, variant_dir: Path, *, threads=None, runtime: str = "auto", runs: int | None = None,
              only=None, timeout_s: float = 600, dump_outputs: Path | None = None) -> Path:
        raise NotImplementedError

    def predict(self, target: Target, models: list[Path], inputs: Path, *, threads: int | None = None,
                runtime: str = "auto", timeout_s: float = 1800):
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<target kind {self.name}>"


def runner_failure(code: int, stderr: str, step: str, where: str) -> PipelineError:
    """Why the runner (or its python) did not finish: its own refusal is bad input, anything else a crash.

    code: the process's exit status; negative for a signal (subprocess), 128 + N from a shell, 255 from ssh
    when the remote process died of a signal.
    """
    lines = [l.strip() for l in stderr.splitlines() if l.strip()]
    last = lines[-1] if lines else ""
    if code == RUNNER_REFUSED and last.startswith("error: "):
        return PipelineError(f"expected {step} to succeed on {where}, received {last!r}")
    signum = signal_of(code)
    if signum is not None:
        try:
            what = f"{signal.Signals(signum).name} (killed by signal {signum})"
        except ValueError:
            what = f"signal {signum}"
    elif code == 255:
        what = "exit status 255 (killed by a signal)"
    else:
        what = f"exit status {code}"
    said = f": {last[-200:]!r}" if last else ""
    return ToolError(f"expected {step} to finish on {where}, received {what}{said}; the runtime crashed on an "
                     f"accepted artifact")


def signal_of(code: int) -> int | None:
    """The signal a process died of, from its exit status as subprocess (-N) or a shell (128 + N) gives it."""
    return -code if code < 0 else code - 128 if 128 < code < 128 + 65 else None
