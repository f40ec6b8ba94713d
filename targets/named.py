"""Benchmark targets by name, as `make sweep TARGETS="local pi-emulator pi@raspberrypi.local"` gives them:
`local` (this machine), a device profile that names its device (`host = …` in targets/profiles/<name>.toml),
or an ssh host / ~/.ssh/config alias."""
from __future__ import annotations

from dataclasses import dataclass

from mobilenet_edge.pipeline.errors import PipelineError

LOCAL = "local"
MCU = "mcu"


@dataclass(frozen=True)
class SweepTarget:
    """One place the sweep benchmarks on: this machine, or an ssh device (with an optional profile)."""
    name: str  # as the user wrote it
    host: str | None = None  # None: this machine
    profile: str | None = None
    port: int | None = None
    identity: str | None = None
    known_hosts: str | None = None

    @property
    def target(self) -> str:
        """The name benchmark files use: local, ssh-<host>."""
        from mobilenet_edge.targets.ssh import target_name

        return LOCAL if self.host is None else target_name(self.host)

    @property
    def file(self) -> str:
        return f"benchmark-{self.target}.json"

    @property
    def entry(self) -> str:
        """Its entry in sweep-state.json (this machine keeps the sweep's original `benchmark`)."""
        return "benchmark" if self.host is None else f"benchmark@{self.target}"


def parse_targets(names) -> tuple[SweepTarget, ...]:
    """`local`, a profile with a `host`, or a host/alias; PipelineError for a profile that names no device."""
    from mobilenet_edge.targets.profiles import available_profiles, load_profile

    targets = []
    for name in dict.fromkeys(names):
        if name == MCU:  # a microcontroller is not benchmarked over ssh: pipeline/sweep/mcu.py runs it
            continue
        if name == LOCAL:
            targets.append(SweepTarget(name))
        elif name in available_profiles() or name.endswith(".toml"):
            prof = load_profile(name)
            if not prof.host:
                raise PipelineError(f"expected profile {name!r} in TARGETS to name its device (host = \"user@host\"), "
                                    f"received a profile without host; give the host instead")
            targets.append(SweepTarget(name, prof.host, name, prof.port, prof.identity, prof.known_hosts))
        else:
            targets.append(SweepTarget(name, host=name))
    if len({t.target for t in targets}) != len(targets):
        raise PipelineError(f"expected TARGETS to name each device once, received {' '.join(names)}")
    return tuple(targets)
