"""Typed configuration, validated once at the edge."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.archs import get_arch
from pipeline.errors import PipelineError

MIN_RESOLUTION = 32
FORMATS = ("fp32", "fp16", "dynamic", "int8", "onnx", "onnx-int8")


def resolution_from(res: int | str | None = None, rho: float | str | None = None) -> int:
    """RES wins; otherwise RES = round(224 * rho); default 224. rho is the paper's resolution multiplier."""
    if res not in (None, ""):
        try:
            value = int(res)
        except (TypeError, ValueError):
            raise PipelineError(f"expected RES to be an integer >= {MIN_RESOLUTION}, received RES={res!r}") from None
        return value
    if rho not in (None, ""):
        try:
            r = float(rho)
        except (TypeError, ValueError):
            raise PipelineError(f"expected RHO in (0, 1], received RHO={rho!r}") from None
        if not 0 < r <= 1:
            raise PipelineError(f"expected RHO in (0, 1], received RHO={rho!r}")
        return round(224 * r)
    return 224


@dataclass(frozen=True)
class Variant:
    """One MobileNet: architecture, width multiplier alpha, input side, the task it classifies and its weights."""

    alpha: float = 1.0
    resolution: int = 224
    task: str = "imagenet"
    weights: str = "imagenet"  # 'imagenet' | 'random' | 'reference' | path to .keras/.h5/.weights.h5
    arch: str = "v1"

    def __post_init__(self):
        object.__setattr__(self, "alpha", get_arch(self.arch).check_alpha(self.alpha))
        if not isinstance(self.resolution, int) or self.resolution < MIN_RESOLUTION:
            raise PipelineError(
                f"expected resolution >= {MIN_RESOLUTION} (MobileNet downsamples 32x), received RES={self.resolution!r}"
            )

    @property
    def name(self) -> str:
        return get_arch(self.arch).variant_name(self.alpha, self.resolution)

    @property
    def rho(self) -> float:
        return self.resolution / 224


@dataclass(frozen=True)
class QuantConfig:
    """Full-integer quantization settings."""

    io_dtype: str = "uint8"  # uint8 for Android's Task Library (it rejects int8 inputs), int8 or float
    per_channel: bool = True  # per-tensor collapses MobileNet V1 (depthwise ranges differ per channel)
    num_samples: int = 200
    seed: int = 0
    calib_dir: str | None = None
    keep_float: int = 0  # selective quantization: keep the k worst layers in float
    diagnose: bool = False  # per-layer int8 diagnosis with TensorFlow's quantization debugger
    hard_swish: str = "split"  # V3 int8 .tflite: split (ops XNNPACK runs in int8) or fused (HARD_SWISH, builtin kernel)
    onnx_activations: str = "uint8"  # ONNX int8 activations: uint8 (onnxruntime's x86 integer kernels) or int8
    # Data-free calibration (CALIB=synthetic, or TASK=imagenet without CALIB): fewer samples than real images,
    # since each costs optimisation steps (measured in benchmarks/records/synthetic_calibration.json).
    synthetic_samples: int = 32
    synthetic_steps: int = 25
    budget: float | None = None  # BUDGET: largest allowed top-1 drop in points; None = plain int8 (pipeline/budget.py)

    def __post_init__(self):
        if self.io_dtype not in ("uint8", "int8", "float"):
            raise PipelineError(f"expected INT8_IO uint8, int8 or float, received {self.io_dtype!r}")
        if not isinstance(self.num_samples, int) or self.num_samples < 1:
            raise PipelineError(f"expected N >= 1 calibration samples, received N={self.num_samples!r}")
        if self.hard_swish not in ("split", "fused"):
            raise PipelineError(f"expected hard_swish split or fused, received {self.hard_swish!r}")
        if self.onnx_activations not in ("uint8", "int8"):
            raise PipelineError(f"expected ONNX int8 activations uint8 or int8, received {self.onnx_activations!r}")
        if self.keep_float < 0:
            raise PipelineError(f"expected KEEP_FLOAT >= 0, received {self.keep_float!r}")
        if not isinstance(self.synthetic_samples, int) or self.synthetic_samples < 1 or self.synthetic_steps < 0:
            raise PipelineError("expected SYNTH_N >= 1 and SYNTH_STEPS >= 0, received "
                                f"SYNTH_N={self.synthetic_samples!r} SYNTH_STEPS={self.synthetic_steps!r}")
        if self.budget is not None and not 0 <= self.budget <= 100:
            raise PipelineError(f"expected BUDGET in [0, 100] top-1 points, received BUDGET={self.budget!r}")


@dataclass(frozen=True)
class ExportConfig:
    formats: tuple[str, ...] = FORMATS
    opset: int = 17
    out: Path = field(default_factory=lambda: Path("artifacts"))

    def __post_init__(self):
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise PipelineError(f"expected formats among {', '.join(FORMATS)}, received {', '.join(bad) or 'none'}")
        if not 9 <= int(self.opset) <= 21:
            raise PipelineError(f"expected an ONNX opset between 9 and 21, received {self.opset!r}")
