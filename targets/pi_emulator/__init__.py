"""The emulated Raspberry Pi as a target (`pi-emulator`): an ssh target whose defaults are the emulator's own.

`pi-emulator.sh` (beside this file) builds an arm64 Debian userland run by qemu-user behind a real sshd on
127.0.0.1; `pi-emulator.sh env` prints its host, port, key and known_hosts (PI_EMULATOR_DIR and
PI_EMULATOR_PORT move them), so they are stated once, there. Start it with `make pi-emulator`.
"""
from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.targets.profiles import load_profile
from mobilenet_edge.targets.ssh import SshHost
from mobilenet_edge.targets.target import Given, Target

SCRIPT = Path(__file__).resolve().parent / "pi-emulator.sh"


def settings() -> dict[str, str]:
    """HOST, PORT, IDENTITY, KNOWN_HOSTS, PROFILE, ... as `pi-emulator.sh env` prints them (nothing is started)."""
    proc = subprocess.run(["bash", str(SCRIPT), "env"], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise PipelineError(f"expected `pi-emulator.sh env` to print the emulator's settings, received "
                            f"{proc.stderr.strip()[-200:] or f'exit status {proc.returncode}'!r}")
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line and not line.startswith("#"))


class PiEmulator(SshHost):
    name = "pi-emulator"
    example = "pi-emulator"

    def make(self, name: str, given: Given) -> Target:
        if given.address:
            raise PipelineError(f"expected `pi-emulator` alone (the emulator's own host), received {name!r}")
        env = settings()
        if not given.identity and not Path(env["IDENTITY"]).is_file():
            raise PipelineError(f"expected the emulated Pi's key at {env['IDENTITY']}, received no such file; "
                                f"build and start it with `make pi-emulator`")
        given = replace(given, address=env["HOST"], port=given.port or int(env["PORT"]),
                        identity=given.identity or env["IDENTITY"], known_hosts=given.known_hosts or env["KNOWN_HOSTS"],
                        profile=given.profile or load_profile(env["PROFILE"]))
        return super().make(name, given)


KIND = PiEmulator()
