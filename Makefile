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
EVAL    ?=
THREADS ?=
HOST    ?=
PORT    ?= 22
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
STRICT      ?= 0

VARIANT = --arch $(ARCH) --alpha $(ALPHA) $(if $(RES),--res $(RES)) $(if $(RHO),--rho $(RHO)) --task $(TASK) \
          $(if $(WEIGHTS),--weights $(WEIGHTS)) --out $(OUT)
EXPORT  = $(CLI) export $(VARIANT) $(if $(CALIB),--calib $(CALIB)) --n $(N) --int8-io $(INT8_IO) --opset $(OPSET) \
          $(if $(filter-out 0,$(KEEP_FLOAT)),--keep-float $(KEEP_FLOAT))
VALID   = $(if $(LIMIT),--limit $(LIMIT)) $(if $(EVAL),--eval $(EVAL))

.PHONY: help setup setup-ray sweep demo all fp32 fp16 dynamic int8 onnx onnx-int8 cost validate report train bench bench-check \
        bench-remote pi-emulator android test test-fast clean

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
	$(CLI) sweep --task $(TASK) --archs "$(ARCHS)" --alphas "$(ALPHAS)" $(if $(RESOLUTIONS),--resolutions "$(RESOLUTIONS)") \
	  --formats "$(FORMATS)" $(if $(WEIGHTS),--weights $(WEIGHTS)) $(if $(CALIB),--calib $(CALIB)) --n $(N) \
	  --int8-io $(INT8_IO) --opset $(OPSET) --limit $(or $(LIMIT),1000) $(if $(EVAL),--eval $(EVAL)) \
	  --executor $(EXECUTOR) $(if $(RAY_ADDRESS),--ray-address $(RAY_ADDRESS)) $(if $(WORKERS),--workers $(WORKERS)) \
	  $(if $(THREADS),--bench-threads $(THREADS)) $(if $(filter-out 0,$(STRICT)),--strict) --out $(OUT)

demo: setup  ## main job: the offline reference task end to end (every format, validation, benchmark, report)
	$(CLI) demo --out $(OUT) --alphas "$(ALPHAS)" $(if $(LIMIT),--limit $(LIMIT))

all: setup  ## every format for one variant (+ the per-tensor int8 .tflite, to compare)
	$(EXPORT) --formats all --per-tensor

fp32 fp16 dynamic int8 onnx onnx-int8: setup  ## one format for one variant (make int8 ALPHA=0.75 ...)
	$(EXPORT) --formats $@

cost: setup  ## per-layer cost table (Mult-Adds, params; V1: paper Table 1/2) for ARCH, ALPHA and RES
	$(CLI) cost --arch $(ARCH) --alpha $(ALPHA) $(if $(RES),--res $(RES)) $(if $(RHO),--rho $(RHO))

validate: setup  ## accuracy drift of every artifact of the variant; non-zero exit if a gate fails
	$(CLI) validate $(VARIANT) $(VALID)

report: setup  ## OUT/report.md, report.html, summary.json over every variant under OUT
	$(CLI) report --out $(OUT)

train: setup  ## train a checkpoint on TASK (default fashion-mnist at 64 px)
	$(CLI) train --arch $(ARCH) --alpha $(ALPHA) --res $(or $(RES),64) \
	  $(if $(TRAIN_RESOLUTIONS),--resolutions "$(TRAIN_RESOLUTIONS)") $(if $(INIT),--init $(INIT)) --task $(if $(filter imagenet,$(TASK)),fashion-mnist,$(TASK)) \
	  --epochs $(EPOCHS) --out $(OUT) $(if $(CHECKPOINTS),--checkpoints $(CHECKPOINTS))

bench: setup  ## latency of every artifact of the variant on this machine
	$(CLI) bench $(VARIANT) $(if $(THREADS),--threads $(THREADS)) $(if $(PROFILE),--profile $(PROFILE))

bench-check: setup  ## runner vs. the official tools side by side (p50 ratios at 1 and 2 threads)
	$(VENV)/bin/python benchmarks/reference_check.py $(OUT)/$(TASK)/mobilenet_$(shell printf '%.2f' $(ALPHA))_$(or $(RES),224)

bench-remote: setup  ## latency on a device over ssh: HOST=user@host [PORT=22] [THREADS=4]
	$(CLI) bench-remote $(VARIANT) --host "$(HOST)" --port $(PORT) $(if $(THREADS),--threads $(THREADS)) \
	  $(if $(PROFILE),--profile $(PROFILE)) $(if $(IDENTITY),--identity $(IDENTITY)) \
	  $(if $(KNOWN_HOSTS),--known-hosts $(KNOWN_HOSTS))

pi-emulator: setup  ## build (cached) and start the emulated Raspberry Pi behind sshd on 127.0.0.1
	bash targets/pi_emulator/pi-emulator.sh start

android: setup  ## android/ folder from photos (TASK=<folder>: trains or reuses) or a variant: only the .tflite files that pass
	$(CLI) android $(VARIANT) $(if $(INIT),--init $(INIT)) $(if $(filter command line environment,$(origin EPOCHS)),--epochs $(EPOCHS)) \
	  $(if $(CALIB),--calib $(CALIB)) --n $(N) --int8-io $(INT8_IO) $(VALID) $(if $(CHECKPOINTS),--checkpoints $(CHECKPOINTS))

.PHONY: predict
predict: setup  ## top-5 labels of IMAGE="a.jpg dir/ ..." with ARTIFACT (default: the variant's int8 .tflite)
	$(CLI) predict $(IMAGE) $(if $(ARTIFACT),--artifact $(ARTIFACT)) $(if $(TOP),--top $(TOP)) \
	  $(if $(filter-out 0,$(JSON)),--json) $(VARIANT)

test: setup setup-ray  ## the test suite (slow tests included)
	$(VENV)/bin/python -m pytest -q

test-fast: setup  ## the test suite without slow tests
	$(VENV)/bin/python -m pytest -q -m "not slow"

clean:  ## remove artifacts (not .venv)
	rm -rf $(OUT)
