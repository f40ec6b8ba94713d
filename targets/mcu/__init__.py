"""A microcontroller as a target (`TARGETS=mcu`, `make mcu`): TFLite Micro's interpreter and Arm's Vela on this
host stand in for the part, whose budget (SRAM, FLASH) and NPU are the sweep's / `make mcu`'s settings.

Files: tflm.py (which files TFLite Micro takes, the arena search, runs in a child process), tflm_child.py (that
child: stdlib + numpy + tflite-micro), vela.py (the Ethos-U compiler), csource.py (the model as C source). The
stage that uses them is pipeline/mcu.py; docs/mcu.md says what each figure means.

Nothing is timed on a microcontroller here: `bench` and `predict` say so in one line, and the sweep runs the
mcu stage (pipeline/sweep/mcu.py) for this kind instead of a benchmark.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from mobilenet_edge.pipeline.config import DeviceProfile
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.targets.target import Given, Kind, Target

NAME = "mcu"
PROFILE = DeviceProfile(name=NAME, description="a microcontroller: TFLite Micro's reference kernels, one thread",
                        threads=1, runtimes=("tflite-micro",))


@dataclass(frozen=True)
class McuInfo:
    """What stands in for the microcontroller here (the sweep keys its state on it)."""
    tflite_micro: str
    vela: str | None
    builtin_ops: int


class Microcontroller(Kind):
    name = NAME
    example = NAME

    def make(self, name: str, given: Given) -> Target:
        if given.address:
            raise PipelineError(f"expected `mcu` alone (its budget comes from SRAM=, FLASH=, NPU=), received {name!r}")
        # The address names what runs the models here (not a device to reach): never "this machine"'s benchmark.
        return Target(name, self, label=NAME, address="tflite-micro", python=sys.executable,
                      profile=given.profile or PROFILE)

    def probe(self, target: Target, timeout_s: float) -> McuInfo:
        from importlib.metadata import PackageNotFoundError, version

        from mobilenet_edge.targets.mcu.tflm import tflm_ops

        release, ops = tflm_ops()
        try:
            vela = version("ethos-u-vela")
        except PackageNotFoundError:
            vela = None
        return McuInfo(release, vela, len(ops))

    def bench(self, target: Target, variant_dir: Path, **settings) -> Path:
        raise PipelineError(f"expected a target that times artifacts, received {target.name!r}: a microcontroller is "
                            f"measured by `make mcu` (arena, flash, accuracy on TFLite Micro's kernels, Vela's cycle "
                            f"estimate), and by `make sweep TARGETS=mcu`")

    def predict(self, target: Target, models: list[Path], inputs: Path, **settings):
        raise PipelineError(f"expected a target that runs the device validation, received {target.name!r}: `make mcu` "
                            f"runs the held-out images through TFLite Micro's kernels itself")


KIND = Microcontroller()
