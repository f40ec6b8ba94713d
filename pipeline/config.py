"""Typed configuration, validated once at the edge: every stage's *Config lives here.

Variant (which model), QuantConfig and ExportConfig (convert), Gates and ValidationConfig (validate),
RecipeConfig (the recipe), TrainConfig (train), SweepConfig (sweep), AndroidTaskConfig (android) and
DeviceProfile (a kind of device, targets/profiles/*.toml). Each rejects a bad value when it is made, with
"expected ..., received ...".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mobilenet_edge.pipeline import formats
from mobilenet_edge.pipeline.archs import get_arch
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.targets.plan import DEFAULT_PREFERENCE, RUNTIME_FORMAT, check_threads

if TYPE_CHECKING:
    from mobilenet_edge.calibration.representative import CalibrationSet

MIN_RESOLUTION = 32
# Defaults that the CLI, the Makefile and the stages share: stated here only (the CLI's --help quotes them).
DEFAULT_OUT = Path("artifacts")
DEFAULT_TASK = "imagenet"  # TASK when none is given (train's is TRAIN_TASK: ImageNet cannot be had offline)
TRAIN_TASK = "fashion-mnist"
TRAIN_RESOLUTION = 64  # `train` without RES: the reference task's side
PAPER_ALPHAS = (0.25, 0.5, 0.75, 1.0)  # the paper's four widths: demo and sweep
# `make demo`: one of each kind; V4 Conv-M (5x Conv-S's Mult-Adds) only when asked (ARCHS=...), so the demo
# stays a demo (under 12 minutes here).
DEMO_ARCHS = ("v1", "v2", "v3-small", "v4-conv-s")
# A folder TASK (`train` or `android`): end-to-end epochs, after FOLDER_HEAD_EPOCHS with the backbone frozen.
# Twice these was not better by more than the seed-to-seed noise: benchmarks/records/own_classes.json.
ANDROID_EPOCHS = 15
FOLDER_HEAD_EPOCHS = 4
SAMPLE_LIMIT = 1000  # held-out images where all of them would take too long: sweeps, validation on a device
PREDICT_TOP = 5
FORMATS = formats.names()  # the format registry's (pipeline/formats/): fp32 fp16 dynamic int8 onnx onnx-int8
EXECUTORS = ("process", "ray")  # where a sweep runs its jobs (pipeline/sweep/executors.py)
PAPER_RESOLUTIONS = (128, 160, 192, 224)
DEFAULT_FORMATS = ("fp32", "fp16", "int8", "onnx")  # a sweep's
INITS = ("random", "imagenet", "reference")  # where training starts, besides a weights file


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
    task: str = DEFAULT_TASK
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
    budget: float | None = None  # BUDGET: largest allowed top-1 drop in points; None = plain int8 (pipeline/budget/)

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
    out: Path = field(default_factory=lambda: DEFAULT_OUT)

    def __post_init__(self):
        # Canonical keys (tflite-int8) and today's names (int8) alike; kept as the names records use.
        object.__setattr__(self, "formats", formats.canonical_names(self.formats))
        if not 9 <= int(self.opset) <= 21:
            raise PipelineError(f"expected an ONNX opset between 9 and 21, received {self.opset!r}")


@dataclass(frozen=True)
class Gates:
    """Pass thresholds; users override them (CLI flags / Makefile variables)."""

    fp32_agreement: float = 0.999
    fp16_agreement: float = 0.995
    int8_drop_points: float = 1.0  # with labels: top-1 drop vs. float, in points (int8 and dynamic)
    int8_agreement: float = 0.97  # int8 always; dynamic too when there are no labels

    def rule(self, precision: str, labelled: bool) -> tuple[str, float]:
        """The gate of a format's `gate_rule` (pipeline/formats/: its precision unless it names another)."""
        if precision == "fp32":
            return "top1_agreement", self.fp32_agreement
        if precision == "fp16":
            return "top1_agreement", self.fp16_agreement
        return ("top1_drop_points", self.int8_drop_points) if labelled else ("top1_agreement", self.int8_agreement)


@dataclass(frozen=True)
class ValidationConfig:
    limit: int | None = None  # held-out images (None: all)
    batch: int = 64
    seed: int = 0
    eval_dir: str | None = None  # ImageNet-val style folder for TASK=imagenet
    gates: Gates = Gates()
    threads: int = 2  # per runtime; a sweep worker gets its share of the cores
    # More runtimes to measure each artifact with, beside the default one of its container (runner names of
    # benchmarks/runtimes/, e.g. a second runtime of .onnx files): one more row per artifact they run.
    runtimes: tuple[str, ...] = ()

    def __post_init__(self):
        if self.limit is not None and self.limit < 1:
            raise PipelineError(f"expected --limit >= 1, received {self.limit}")
        unknown = [r for r in self.runtimes if r not in RUNTIME_FORMAT]
        if unknown:
            raise PipelineError(f"expected validation runtimes among {', '.join(RUNTIME_FORMAT)}, "
                                f"received {', '.join(unknown)}")

@dataclass(frozen=True)
class RecipeConfig:
    variant: Variant
    export: ExportConfig = field(default_factory=ExportConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)
    per_tensor: bool = False  # also write the per-tensor int8 .tflite, to show what per-channel buys
    metadata: bool = True  # embed TFLite metadata (labels, normalisation) for Android
    validation: ValidationConfig | None = None  # None: skip step 6
    bench_threads: int | None = None  # None: skip step 7
    report: bool = False  # step 8
    calibration: "CalibrationSet | None" = None  # precomputed samples (a Ray worker gets them from the driver)

@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 8
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    bn_momentum: float = 0.9  # Keras's 0.99 leaves moving statistics near their start after a short run
    bn_batches: int = 100  # batches used to re-estimate BatchNorm statistics after training
    seed: int = 0
    limit: int | None = None  # training images (None: all)
    init: str = "random"  # 'random', 'imagenet', 'reference' or a checkpoint / .keras file (pipeline.train.transfer)
    resolutions: tuple[int, ...] = ()  # multi-resolution training sides; () = the variant's side only
    resolution_sweep: bool = True  # also measure the checkpoint's accuracy at every offered resolution
    # Small datasets (pipeline.train.finetune); `small_data(...)` sets them for a folder task.
    head_epochs: int = 0  # epochs with the backbone frozen first, when a transferred model has a new head
    fine_tune_lr: float | None = None  # end-to-end rate after the head phase (None: learning_rate)
    augment: str = "flip"  # 'flip' | 'photo' (random crop, flip, brightness, contrast)
    balanced: bool = False  # class-balanced sampling
    patience: int | None = None  # early stopping on the validation split (folder tasks), in epochs
    linear_probe: bool = False  # backbone frozen throughout: only the new head trains, for `epochs`

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise PipelineError(
                f"expected epochs >= 1, batch size >= 1, learning rate > 0, received "
                f"{self.epochs}, {self.batch_size}, {self.learning_rate}"
            )
        check_init(self.init)
        if self.augment not in ("flip", "photo") or self.head_epochs < 0 or (self.patience or 0) < 0:
            raise PipelineError(f"expected augment flip|photo, head epochs >= 0, patience >= 0, received "
                                f"{self.augment!r}, {self.head_epochs}, {self.patience}")
        if any(not isinstance(r, int) or r < MIN_RESOLUTION for r in self.resolutions):
            raise PipelineError(f"expected training resolutions >= {MIN_RESOLUTION}, received {self.resolutions}")


@dataclass(frozen=True)
class SweepConfig:
    """A grid and how to run it. `resolutions` None: the task's grid (see `default_resolutions`)."""

    task: str = DEFAULT_TASK
    archs: tuple[str, ...] = ("v1",)
    alphas: tuple[float, ...] = PAPER_ALPHAS
    resolutions: tuple[int, ...] | None = None
    formats: tuple[str, ...] = DEFAULT_FORMATS
    weights: str | None = None  # None: the task's default (reference | imagenet | random)
    out: Path = DEFAULT_OUT
    quant: QuantConfig = field(default_factory=QuantConfig)
    opset: int = ExportConfig.opset
    validation: ValidationConfig = field(default_factory=lambda: ValidationConfig(limit=SAMPLE_LIMIT))
    bench: bool = True
    bench_threads: int | tuple[int, ...] | None = None  # None: the runner's default, every core; a tuple: each
    bench_runs: int = 100
    executor: str = "process"
    workers: int | None = None  # None: one per core, at most one per job
    threads: int | None = None  # per worker; None: cores // workers (1 for a grid: measured, README "Sweeps")
    ray_address: str | None = None
    ray_resources: dict | None = None  # Ray resources each job asks for, e.g. {"gpu-node": 1}
    targets: tuple[str, ...] = ("local",)  # where to benchmark: local, a profile with a host, a host (sweep_targets)
    mcu: "McuBudget" = field(default_factory=lambda: McuBudget())  # TARGETS=mcu: SRAM / FLASH / NPU

    def __post_init__(self):
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "formats", formats.canonical_names(self.formats, "FORMATS", " "))
        if self.executor not in EXECUTORS:
            raise PipelineError(f"expected EXECUTOR to be one of {', '.join(EXECUTORS)}, received EXECUTOR={self.executor!r}")
        check_threads(self.bench_threads)
        object.__setattr__(self, "targets", tuple(self.targets))
        if not self.targets:
            raise PipelineError("expected TARGETS to name at least one target (local, a profile, a host), received none")
        # Each target's name is checked against the profiles and hosts by sweep/grid.py's grid(), before any work.
        for name in ("workers", "threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise PipelineError(f"expected {name.upper()} >= 1, received {name.upper()}={value!r}")
        if not isinstance(self.bench_runs, int) or self.bench_runs < 1:
            raise PipelineError(f"expected RUNS >= 1, received RUNS={self.bench_runs!r}")
        for name in ("archs", "alphas"):
            if not getattr(self, name):
                raise PipelineError(f"expected {name.upper()} to list at least one value, received none")
        if self.resolutions is not None and not self.resolutions:
            raise PipelineError("expected RESOLUTIONS to list at least one value, received none")

@dataclass(frozen=True)
class AndroidTaskConfig:
    variant: Variant  # weights "" for a folder task: train (or reuse) a checkpoint
    train: TrainConfig = field(default_factory=TrainConfig)  # used only when the folder task is trained
    quant: QuantConfig = field(default_factory=QuantConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    out: Path = DEFAULT_OUT
    checkpoints: Path | None = None  # default OUT/checkpoints/<task>
    bench_threads: int | None = None  # None: every usable core

@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str = ""
    arch: str | None = None
    python: str = "python3"
    threads: int | None = None
    runtimes: tuple[str, ...] = DEFAULT_PREFERENCE
    warmup: int = 10
    runs: int = 100
    notes: str = ""
    host: str | None = None  # a profile that names its device is a sweep target (TARGETS="<profile>")
    port: int | None = None
    identity: str | None = None
    known_hosts: str | None = None
    kind: str | None = None  # the target kind that reaches `host` (targets.registry.KINDS; None: ssh)

    def __post_init__(self):
        for key in ("threads", "warmup", "runs"):
            value = getattr(self, key)
            minimum = 0 if key == "warmup" else 1
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < minimum):
                raise PipelineError(f"expected {key} >= {minimum} (an integer) in profile {self.name!r}, received {value!r}")
        if not isinstance(self.python, str) or not self.python.strip():
            raise PipelineError(f"expected python to be a command in profile {self.name!r}, received {self.python!r}")
        unknown = [r for r in self.runtimes if r not in RUNTIME_FORMAT]
        if not self.runtimes or unknown:
            raise PipelineError(f"expected runtimes among {sorted(RUNTIME_FORMAT)} in profile {self.name!r}, "
                                f"received {list(self.runtimes)!r}")


def check_init(init: str) -> str:
    """INIT: random, imagenet, reference or an existing .keras / .h5 / .weights.h5 file."""
    if init not in INITS and not Path(init).is_file():
        raise PipelineError(f"expected INIT random, imagenet, reference or an existing weights file, received {init!r}")
    if init not in INITS and Path(init).suffix not in (".h5", ".keras"):
        raise PipelineError(f"expected INIT to be a .keras, .h5 or .weights.h5 file, received {Path(init).name!r}")
    return init


# ---------------------------------------------------------------------------------------- microcontrollers
NPUS = ("none", "ethos-u55-128", "ethos-u55-256", "ethos-u65-256")  # NPU=…: Vela's --accelerator-config
# Vela's system configuration (Arm/vela.ini, shipped with ethos-u-vela) for each NPU: embedded parts with
# weights in flash and the arena in SRAM ("Shared_Sram"); the clock and memory speeds of the estimates are its.
VELA_SYSTEMS = {"ethos-u55-128": ("Ethos_U55_High_End_Embedded", "Shared_Sram"),
                "ethos-u55-256": ("Ethos_U55_High_End_Embedded", "Shared_Sram"),
                "ethos-u65-256": ("Ethos_U65_Embedded", "Shared_Sram")}
MCU_SRAM = "256K"  # a Cortex-M7 / M55 class part; MLPerf Tiny's VWW boards have 256-512 KB
MCU_FLASH = "1M"
MCU_IMAGES = 1000  # held-out images run on TFLite Micro's reference kernels (about 10 ms each at 0.25 / 96 px)
_SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024 ** 2, "MB": 1024 ** 2, "MIB": 1024 ** 2}


def parse_size(text: str | int, what: str) -> int:
    """'256K' -> 262144, '1M' -> 1048576, '1.5M', '300000' (bytes); binary units (K = 1024).
    Anything else (negative, zero, an unknown unit, a fraction of a byte) is one PipelineError naming `what`."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).upper() if match else None
    if not match or unit not in _SIZE_UNITS:
        raise PipelineError(f"expected {what} as a size such as 256K, 1M or 1.5M (K = 1024 bytes), received {what}={text!r}")
    value = float(match.group(1)) * _SIZE_UNITS[unit]
    if value < 1 or value != int(value):
        raise PipelineError(f"expected {what} to be a whole number of bytes >= 1, received {what}={text!r}")
    return int(value)


@dataclass(frozen=True)
class McuBudget:
    """The microcontroller `make mcu` / TARGETS=mcu checks a model against: SRAM and flash in bytes, and its NPU."""

    sram: int = parse_size(MCU_SRAM, "SRAM")
    flash: int = parse_size(MCU_FLASH, "FLASH")
    npu: str = "none"

    def __post_init__(self):
        for name in ("sram", "flash"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise PipelineError(f"expected {name.upper()} >= 1 byte, received {name.upper()}={value!r}")
        if self.npu not in NPUS:
            raise PipelineError(f"expected NPU to be one of {', '.join(NPUS)}, received NPU={self.npu!r}")

    @classmethod
    def parse(cls, sram: str | None = None, flash: str | None = None, npu: str | None = None) -> "McuBudget":
        """From the command line's text; None or '' keeps the default."""
        return cls(parse_size(sram or MCU_SRAM, "SRAM"), parse_size(flash or MCU_FLASH, "FLASH"), npu or "none")


@dataclass(frozen=True)
class McuConfig:
    """`make mcu`: one variant as a microcontroller runs it (pipeline/mcu.py)."""

    variant: Variant
    budget: McuBudget = field(default_factory=McuBudget)
    out: Path = Path("artifacts")
    num_samples: int = QuantConfig.num_samples  # calibration samples of the int8-I/O file (as int8's)
    seed: int = QuantConfig.seed
    calib_dir: str | None = None
    images: int = MCU_IMAGES

    def __post_init__(self):
        object.__setattr__(self, "out", Path(self.out))
        if not isinstance(self.images, int) or self.images < 1:
            raise PipelineError(f"expected LIMIT >= 1 held-out images, received LIMIT={self.images!r}")
        if not isinstance(self.num_samples, int) or self.num_samples < 1:
            raise PipelineError(f"expected N >= 1 calibration samples, received N={self.num_samples!r}")
