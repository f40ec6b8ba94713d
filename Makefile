# Every target calls the project's CLI (`mobilenet-edge`, see pipeline/cli.py); no logic lives here.
# The first target run on a fresh machine creates .venv and installs the pinned dependencies.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV   ?= .venv
CLI     = $(VENV)/bin/mobilenet-edge

ARCH    ?= v1
ALPHA   ?= 1.0
RES     ?=
RHO     ?=
TASK    ?= imagenet
WEIGHTS ?=
CALIB   ?=
OUT     ?= artifacts
N       ?= 200
INT8_IO ?= uint8
OPSET   ?= 17
LIMIT   ?=
KEEP_FLOAT ?= 0
# BUDGET: largest allowed int8 top-1 drop in points (searched, cheapest first); data-free calibration size
BUDGET  ?=
SYNTH_N ?= 32
SYNTH_STEPS ?= 25
CALIB_URL ?=
CALIB_SHA256 ?=
EVAL    ?=
THREADS ?=
HOST    ?=
PORT    ?=
PROFILE ?=
EPOCHS  ?= 8
ALPHAS  ?= 0.25 0.5 0.75 1.0
# make sweep: the grid (ALPHAS above is shared with demo; RESOLUTIONS empty = the task's grid) and how it runs
ARCHS       ?= v1
RESOLUTIONS ?=
FORMATS     ?= fp32 fp16 int8 onnx
EXECUTOR    ?= process
WORKERS     ?=
RAY_ADDRESS ?=
RAY_RESOURCES ?=
STRICT      ?= 0
IMAGE   ?=
ARTIFACT ?=
TOP     ?=
JSON    ?= 0
IDENTITY ?=
KNOWN_HOSTS ?=
TRAIN_RESOLUTIONS ?=
INIT    ?=
CHECKPOINTS ?=
LR      ?=
TARGETS ?=
RAY_RESOURCES ?=
SSH_CONFIG ?=
DEVICE_PYTHON ?=

# Variables are data, never shell (see "Make variables" in README.md). Each name in DATA_VARS is re-bound to
# its literal text (make expands nothing inside it) and exported; recipes read it from the environment as
# "$$NAME", or $${NAME:+--flag "$$NAME"} when optional, so one value is always one argument of the CLI.
DATA_VARS = ARCH ALPHA RES RHO TASK WEIGHTS CALIB OUT N INT8_IO OPSET LIMIT KEEP_FLOAT EVAL THREADS HOST PORT \
            PROFILE EPOCHS ALPHAS ARCHS RESOLUTIONS FORMATS EXECUTOR WORKERS RAY_ADDRESS STRICT IMAGE ARTIFACT TOP \
            JSON IDENTITY KNOWN_HOSTS TRAIN_RESOLUTIONS INIT CHECKPOINTS LR \
            BUDGET SYNTH_N SYNTH_STEPS CALIB_URL CALIB_SHA256 TARGETS RAY_RESOURCES SSH_CONFIG \
            DEVICE_PYTHON
# make android trains with its own epoch default unless EPOCHS was given (asked before the re-binding below)
EPOCHS_GIVEN := $(filter command line environment,$(origin EPOCHS))
$(foreach v,$(DATA_VARS),$(eval override $(v) := $$(value $(v))))
export $(DATA_VARS)
# ssh to a device: -p only when PORT is given, so an ~/.ssh/config alias keeps its own Port
SSH     = $${PORT:+--port "$$PORT"} $${IDENTITY:+--identity "$$IDENTITY"} $${KNOWN_HOSTS:+--known-hosts "$$KNOWN_HOSTS"} \
          $${SSH_CONFIG:+--ssh-config "$$SSH_CONFIG"}

VARIANT = --arch "$$ARCH" --alpha "$$ALPHA" $${RES:+--res "$$RES"} $${RHO:+--rho "$$RHO"} --task "$$TASK" \
          $${WEIGHTS:+--weights "$$WEIGHTS"} --out "$$OUT"
EXPORT  = $(CLI) export $(VARIANT) $${CALIB:+--calib "$$CALIB"} --n "$$N" --int8-io "$$INT8_IO" --opset "$$OPSET" \
          $(if $(filter-out 0,$(KEEP_FLOAT)),--keep-float "$$KEEP_FLOAT") $(INT8_EXTRA) $(if $(BUDGET),$(VALID))
INT8_EXTRA = $${BUDGET:+--budget "$$BUDGET"} $${CALIB_URL:+--calib-url "$$CALIB_URL"} \
             $${CALIB_SHA256:+--calib-sha256 "$$CALIB_SHA256"} --synthetic-n "$$SYNTH_N" --synthetic-steps "$$SYNTH_STEPS"
VALID   = $${LIMIT:+--limit "$$LIMIT"} $${EVAL:+--eval "$$EVAL"}

.PHONY: help setup setup-ray sweep demo all fp32 fp16 dynamic int8 onnx onnx-int8 cost validate report train bench bench-check bench-int8 \
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

sweep: setup $(if $(filter ray,$(EXECUTOR)),setup-ray)  ## ARCHS x ALPHAS x RESOLUTIONS x FORMATS in parallel, incremental; report with Pareto plots
	$(CLI) sweep --task "$$TASK" --archs "$$ARCHS" --alphas "$$ALPHAS" $${RESOLUTIONS:+--resolutions "$$RESOLUTIONS"} \
	  --formats "$$FORMATS" $${WEIGHTS:+--weights "$$WEIGHTS"} $${CALIB:+--calib "$$CALIB"} --n "$$N" \
	  --int8-io "$$INT8_IO" --opset "$$OPSET" $(INT8_EXTRA) --limit "$${LIMIT:-1000}" $${EVAL:+--eval "$$EVAL"} \
	  --executor "$$EXECUTOR" $${RAY_ADDRESS:+--ray-address "$$RAY_ADDRESS"} $${WORKERS:+--workers "$$WORKERS"} \
	  $${RAY_RESOURCES:+--ray-resources "$$RAY_RESOURCES"} $${TARGETS:+--targets "$$TARGETS"} \
	  $${THREADS:+--bench-threads "$$THREADS"} $(if $(filter-out 0,$(STRICT)),--strict) --out "$$OUT"

demo: setup  ## main job: the offline reference task end to end (every format, validation, benchmark, report)
	$(CLI) demo --out "$$OUT" --alphas "$$ALPHAS" $${LIMIT:+--limit "$$LIMIT"}

all: setup  ## every format for one variant (+ the per-tensor int8 .tflite, to compare)
	$(EXPORT) --formats all --per-tensor

fp32 fp16 dynamic int8 onnx onnx-int8: setup  ## one format for one variant (make int8 ALPHA=0.75 ...)
	$(EXPORT) --formats $@

cost: setup  ## per-layer cost table (Mult-Adds, params; V1: paper Table 1/2) for ARCH, ALPHA and RES
	$(CLI) cost --arch "$$ARCH" --alpha "$$ALPHA" $${RES:+--res "$$RES"} $${RHO:+--rho "$$RHO"}

validate: setup  ## accuracy drift of every artifact of the variant; non-zero exit if a gate fails; HOST=…: also on that device
	$(CLI) validate $(VARIANT) $(VALID) $(if $(HOST),--host "$$HOST" $(SSH) $${THREADS:+--threads "$${THREADS%% *}"} \
	  $${PROFILE:+--profile "$$PROFILE"} $${DEVICE_PYTHON:+--python "$$DEVICE_PYTHON"})

report: setup  ## OUT/report.md, report.html, summary.json over every variant under OUT
	$(CLI) report --out "$$OUT"

train: setup  ## train a checkpoint on TASK (default fashion-mnist at 64 px)
	$(CLI) train --arch "$$ARCH" --alpha "$$ALPHA" --res "$${RES:-64}" \
	  $${TRAIN_RESOLUTIONS:+--resolutions "$$TRAIN_RESOLUTIONS"} $${INIT:+--init "$$INIT"} \
	  --task $(if $(subst imagenet,,$(TASK)),"$$TASK",fashion-mnist) \
	  --epochs "$$EPOCHS" $${LR:+--lr "$$LR"} --out "$$OUT" $${CHECKPOINTS:+--checkpoints "$$CHECKPOINTS"}

bench: setup  ## latency of every artifact of the variant on this machine; THREADS="1 2 4": a scaling table
	$(CLI) bench $(VARIANT) $${THREADS:+--threads "$$THREADS"} $${PROFILE:+--profile "$$PROFILE"}

profile: setup  ## time per op type and per layer of every artifact of the variant (LiteRT, ONNX Runtime, OpenVINO)
	$(CLI) profile $(VARIANT) $${THREADS:+--threads "$${THREADS%% *}"}

bench-check: setup  ## runner vs. the official tools side by side (p50 ratios at 1 and 2 threads; any ARCH)
	prefix=mobilenet; [ "$$ARCH" = v1 ] || prefix="mobilenet_$$(printf %s "$$ARCH" | tr - _)"; \
	$(VENV)/bin/python benchmarks/reference_check.py "$$OUT/$$TASK/$${prefix}_$$(printf '%.2f' "$$ALPHA")_$${RES:-224}"

bench-int8: setup  ## int8 vs fp32 p50 of V1, V2, V3-Small, V3-Large at 224 px (TFLite, ONNX; 1, 2 threads) -> record + README
	$(VENV)/bin/python benchmarks/int8_speed.py --readme README.md

bench-remote: setup  ## latency on a device over ssh: HOST=user@host|alias [PORT=] [THREADS=4]
	$(CLI) bench-remote $(VARIANT) --host "$$HOST" $(SSH) $${THREADS:+--threads "$$THREADS"} \
	  $${PROFILE:+--profile "$$PROFILE"}

pi-emulator: setup  ## build (cached) and start the emulated Raspberry Pi behind sshd on 127.0.0.1
	bash targets/pi_emulator/pi-emulator.sh start

android: setup  ## android/ folder from photos (TASK=<folder>: trains or reuses) or a variant: only the .tflite files that pass
	$(CLI) android $(VARIANT) $${INIT:+--init "$$INIT"} $(if $(EPOCHS_GIVEN),--epochs "$$EPOCHS") \
	  $${CALIB:+--calib "$$CALIB"} --n "$$N" --int8-io "$$INT8_IO" $(VALID) $${CHECKPOINTS:+--checkpoints "$$CHECKPOINTS"}

.PHONY: predict
predict: setup  ## top-5 labels of IMAGE="a.jpg dir/ ..." with ARTIFACT (default: the variant's int8 .tflite)
	$(CLI) predict $${IMAGE:+--image-list "$$IMAGE"} $${ARTIFACT:+--artifact "$$ARTIFACT"} $${TOP:+--top "$$TOP"} \
	  $(if $(filter-out 0,$(JSON)),--json) $(VARIANT)

test: setup setup-ray  ## the test suite (slow tests included)
	$(VENV)/bin/python -m pytest -q

test-fast: setup  ## the test suite without slow tests
	$(VENV)/bin/python -m pytest -q -m "not slow"

clean: setup  ## remove OUT (only a folder the pipeline created: it holds OUT/.mobilenet_edge; never .venv)
	$(CLI) clean --out "$$OUT"
