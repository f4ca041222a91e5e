VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup prebuild test lint unit demo bench e2e images cluster schema crd clean

setup:
	bash scripts/setup.sh

## The Kubernetes binaries, promtool and both images, built before the tests so that a cold build (about
## 20 and 4 minutes on 2 cores) is not counted against a test's time limit. Outside CI a machine
## that cannot build them still runs the rest: those tests then skip with the reason.
prebuild: setup
	bash cluster/build.sh >/dev/null || test "$$CI" != true
	bash cluster/promtool.sh >/dev/null || test "$$CI" != true
	bash scripts/images.sh || test "$$CI" != true

## The README's test command: lint, types, and every test (real FFmpeg, real broker, KMock, the
## images and the real cluster).
test: setup prebuild
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

unit: setup
	$(BIN)/pytest tests/unit

demo: setup
	$(BIN)/python scripts/demo.py

bench: setup
	$(BIN)/python bench/overhead.py

e2e: setup
	$(BIN)/pytest -m e2e tests/e2e

## Both images, built for real (podman on a debootstrap base where no Docker daemon runs).
images: setup
	bash scripts/images.sh

## The test suite's real cluster by hand (docs/cluster.md): control plane, node, the images.
cluster: setup
	$(BIN)/python -m tests.cluster

schema: setup
	$(BIN)/ffpool schema > service/ffpool/schema/protocol.json

## The CRD from the operator's models, and its byte-identical copy in the Helm chart.
crd: setup
	$(BIN)/python -m ffpool_operator.spec.crd > crds/ffmpegpools.ffpool.dev.yaml
	cp crds/ffmpegpools.ffpool.dev.yaml charts/ffpool-operator/crds/ffmpegpools.ffpool.dev.yaml

clean:
	rm -rf $(VENV) media .mypy_cache .ruff_cache .pytest_cache
