# Every target calls the project's CLI (`mobilenet-edge`, see pipeline/cli.py); no logic lives here.
# The first target run on a fresh machine creates .venv and installs the pinned dependencies.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV   ?= .venv
CLI     = $(VENV)/bin/mobilenet-edge

# Every variable is empty unless the user sets it: the CLI then uses its default, stated once in
# pipeline/config.py (`.venv/bin/mobilenet-edge COMMAND --help` quotes them). Only what was set is passed.
DATA_VARS = ARCH ALPHA RES RHO TASK WEIGHTS CALIB OUT N INT8_IO OPSET LIMIT KEEP_FLOAT EVAL THREADS HOST PORT \
            PROFILE EPOCHS ALPHAS ARCHS RESOLUTIONS FORMATS EXECUTOR WORKERS RAY_ADDRESS STRICT IMAGE ARTIFACT TOP \
            JSON IDENTITY KNOWN_HOSTS TRAIN_RESOLUTIONS INIT CHECKPOINTS LR \
            BUDGET SYNTH_N SYNTH_STEPS CALIB_URL CALIB_SHA256 TARGETS RAY_RESOURCES SSH_CONFIG \
            DEVICE_PYTHON SRAM FLASH NPU
$(foreach v,$(DATA_VARS),$(eval $(v) ?=))

# Variables are data, never shell (see "Make variables" in README.md). Each name in DATA_VARS is re-bound to
# its literal text (make expands nothing inside it) and exported; recipes read it from the environment as
# "$$NAME", or $${NAME:+--flag "$$NAME"} when optional, so one value is always one argument of the CLI.
$(foreach v,$(DATA_VARS),$(eval override $(v) := $$(value $(v))))
export $(DATA_VARS)
# ssh to a device: -p only when PORT is given, so an ~/.ssh/config alias keeps its own Port
SSH     = $${PORT:+--port "$$PORT"} $${IDENTITY:+--identity "$$IDENTITY"} $${KNOWN_HOSTS:+--known-hosts "$$KNOWN_HOSTS"} \
          $${SSH_CONFIG:+--ssh-config "$$SSH_CONFIG"}

ARCH_ARGS = $${ARCH:+--arch "$$ARCH"} $${ALPHA:+--alpha "$$ALPHA"} $${RES:+--res "$$RES"} $${RHO:+--rho "$$RHO"}
OUT_ARG = $${OUT:+--out "$$OUT"}
VARIANT = $(ARCH_ARGS) $${TASK:+--task "$$TASK"} $${WEIGHTS:+--weights "$$WEIGHTS"} $(OUT_ARG)
QUANT   = $${CALIB:+--calib "$$CALIB"} $${N:+--n "$$N"} $${INT8_IO:+--int8-io "$$INT8_IO"}
EXPORT  = $(CLI) export $(VARIANT) $(QUANT) $${OPSET:+--opset "$$OPSET"} $${KEEP_FLOAT:+--keep-float "$$KEEP_FLOAT"} \
          $(INT8_EXTRA) $(VALID)
INT8_EXTRA = $${BUDGET:+--budget "$$BUDGET"} $${CALIB_URL:+--calib-url "$$CALIB_URL"} \
             $${CALIB_SHA256:+--calib-sha256 "$$CALIB_SHA256"} $${SYNTH_N:+--synthetic-n "$$SYNTH_N"} \
             $${SYNTH_STEPS:+--synthetic-steps "$$SYNTH_STEPS"}
VALID   = $${LIMIT:+--limit "$$LIMIT"} $${EVAL:+--eval "$$EVAL"}

.PHONY: help setup setup-ray setup-openvino setup-mcu mcu sweep demo all fp32 fp16 dynamic int8 onnx onnx-int8 cost validate report train bench bench-check bench-int8 \
        bench-remote pi-emulator android test test-fast clean profile

help:  ## list targets
	@grep -E '^[a-z0-9 -]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.lock pytest
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed  ## create .venv with the pinned dependencies

$(VENV)/.installed-ray: $(VENV)/.installed requirements-ray.lock
	$(VENV)/bin/pip install --quiet -r requirements-ray.lock
	touch $@

setup-ray: $(VENV)/.installed-ray  ## the optional Ray extra (EXECUTOR=ray; the test suite's Ray test)

$(VENV)/.installed-openvino: $(VENV)/.installed requirements-openvino.lock
	$(VENV)/bin/pip install --quiet -r requirements-openvino.lock
	touch $@

setup-openvino: $(VENV)/.installed-openvino  ## the optional OpenVINO extra (x86-64: .onnx files also on OpenVINO)


$(VENV)/.installed-mcu: $(VENV)/.installed requirements-mcu.lock
	$(VENV)/bin/pip install --quiet -r requirements-mcu.lock
	touch $@

setup-mcu: $(VENV)/.installed-mcu  ## the optional microcontroller extra: tflite-micro (a pinned nightly) and Vela

# SRAM=256K FLASH=1M NPU=none|ethos-u55-128|ethos-u55-256|ethos-u65-256 (make mcu, and make sweep TARGETS=mcu)
mcu: setup-mcu  ## one variant on a microcontroller: TFLite Micro accuracy, smallest arena, flash vs SRAM/FLASH, NPU (Vela), C source
	$(CLI) mcu $(VARIANT) $${SRAM:+--sram "$$SRAM"} $${FLASH:+--flash "$$FLASH"} $${NPU:+--npu "$$NPU"} \
	  $${LIMIT:+--limit "$$LIMIT"} $${CALIB:+--calib "$$CALIB"} $${N:+--n "$$N"}

sweep: setup $(if $(filter ray,$(EXECUTOR)),setup-ray) $(if $(filter mcu,$(TARGETS)),setup-mcu)  ## ARCHS x ALPHAS x RESOLUTIONS x FORMATS in parallel, incremental; report with Pareto plots
	$(CLI) sweep $${TASK:+--task "$$TASK"} $${ARCHS:+--archs "$$ARCHS"} $${ALPHAS:+--alphas "$$ALPHAS"} \
	  $${RESOLUTIONS:+--resolutions "$$RESOLUTIONS"} $${FORMATS:+--formats "$$FORMATS"} $${WEIGHTS:+--weights "$$WEIGHTS"} \
	  $(QUANT) $${OPSET:+--opset "$$OPSET"} $(INT8_EXTRA) $(VALID) $${EXECUTOR:+--executor "$$EXECUTOR"} \
	  $${RAY_ADDRESS:+--ray-address "$$RAY_ADDRESS"} $${WORKERS:+--workers "$$WORKERS"} \
	  $${RAY_RESOURCES:+--ray-resources "$$RAY_RESOURCES"} $${TARGETS:+--targets "$$TARGETS"} \
	  $${THREADS:+--bench-threads "$$THREADS"} $(if $(filter-out 0,$(STRICT)),--strict) $(OUT_ARG) \
	  $${SRAM:+--sram "$$SRAM"} $${FLASH:+--flash "$$FLASH"} $${NPU:+--npu "$$NPU"}

demo: setup  ## main job: the offline reference task end to end (every format, validation, benchmark, report)
	$(CLI) demo $(OUT_ARG) $${ALPHAS:+--alphas "$$ALPHAS"} $${ARCHS:+--archs "$$ARCHS"} $${LIMIT:+--limit "$$LIMIT"}

all: setup  ## every format for one variant (+ the per-tensor int8 .tflite, to compare)
	$(EXPORT) --formats all --per-tensor

fp32 fp16 dynamic int8 onnx onnx-int8: setup  ## one format for one variant (make int8 ALPHA=0.75 ...)
	$(EXPORT) --formats $@

cost: setup  ## per-layer cost table (Mult-Adds, params; V1: paper Table 1/2) for ARCH, ALPHA and RES
	$(CLI) cost $(ARCH_ARGS)

validate: setup setup-openvino  ## accuracy drift of every artifact of the variant; non-zero exit if a gate fails; HOST=…: also on that device
	$(CLI) validate $(VARIANT) $(VALID) $(if $(HOST),--host "$$HOST" $(SSH) $${THREADS:+--threads "$${THREADS%% *}"} \
	  $${PROFILE:+--profile "$$PROFILE"} $${DEVICE_PYTHON:+--python "$$DEVICE_PYTHON"})

report: setup  ## OUT/report.md, report.html, summary.json over every variant under OUT
	$(CLI) report $(OUT_ARG)

train: setup  ## train a checkpoint on TASK (default fashion-mnist at 64 px)
	$(CLI) train $(ARCH_ARGS) $${TASK:+--task "$$TASK"} $${TRAIN_RESOLUTIONS:+--resolutions "$$TRAIN_RESOLUTIONS"} \
	  $${INIT:+--init "$$INIT"} $${EPOCHS:+--epochs "$$EPOCHS"} $${LR:+--lr "$$LR"} $(OUT_ARG) \
	  $${CHECKPOINTS:+--checkpoints "$$CHECKPOINTS"}

bench: setup setup-openvino  ## latency of every artifact of the variant on this machine; THREADS="1 2 4": a scaling table
	$(CLI) bench $(VARIANT) $${THREADS:+--threads "$$THREADS"} $${PROFILE:+--profile "$$PROFILE"}

profile: setup setup-openvino  ## time per op type and per layer of every artifact of the variant (LiteRT, ONNX Runtime, OpenVINO)
	$(CLI) profile $(VARIANT) $${THREADS:+--threads "$${THREADS%% *}"}

bench-check: setup  ## runner vs. the official tools side by side (p50 ratios at 1 and 2 threads; any ARCH)
	$(CLI) bench-check $(VARIANT) $${THREADS:+--threads "$$THREADS"}

bench-int8: setup setup-openvino  ## int8 vs fp32 p50 of every ARCH (and V1 0.5) at 224 px (TFLite, ONNX; 1, 2 threads) -> record + README
	$(VENV)/bin/python benchmarks/int8_speed.py && $(VENV)/bin/python benchmarks/readme.py

bench-remote: setup  ## latency on a device: HOST=user@host|alias|pi-emulator [PORT=] [THREADS=4]
	$(CLI) bench-remote $(VARIANT) $${HOST:+--host "$$HOST"} $(SSH) $${THREADS:+--threads "$$THREADS"} \
	  $${PROFILE:+--profile "$$PROFILE"} $${DEVICE_PYTHON:+--python "$$DEVICE_PYTHON"}

pi-emulator: setup  ## build (cached) and start the emulated Raspberry Pi behind sshd on 127.0.0.1
	bash targets/pi_emulator/pi-emulator.sh start

android: setup  ## android/ folder from photos (TASK=<folder>: trains or reuses) or a variant: only the .tflite files that pass
	$(CLI) android $(VARIANT) $${INIT:+--init "$$INIT"} $${EPOCHS:+--epochs "$$EPOCHS"} $(QUANT) $(VALID) \
	  $${CHECKPOINTS:+--checkpoints "$$CHECKPOINTS"}

.PHONY: predict
predict: setup  ## top-5 labels of IMAGE="a.jpg dir/ ..." with ARTIFACT (default: the variant's int8 .tflite)
	$(CLI) predict $${IMAGE:+--image-list "$$IMAGE"} $${ARTIFACT:+--artifact "$$ARTIFACT"} $${TOP:+--top "$$TOP"} \
	  $(if $(filter-out 0,$(JSON)),--json) $(VARIANT)

test: setup setup-ray setup-openvino setup-mcu  ## the test suite (slow tests included)
	$(VENV)/bin/python -m pytest -q

test-fast: setup setup-mcu  ## the test suite without slow tests
	$(VENV)/bin/python -m pytest -q -m "not slow"

clean: setup  ## remove OUT (only a folder the pipeline created: it holds OUT/.mobilenet_edge; never .venv)
	$(CLI) clean $(OUT_ARG)
