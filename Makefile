# TurnForge: `make run` generates a small dataset on the embedded stack; `make test` runs the tests.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROTOS := $(wildcard protos/turnforge/v1/*.proto)
GEN    := $(PROTOS:.proto=_pb2.py)
CHROMIUM := /usr/bin/chromium

.PHONY: install protos run test test-fast bench clean down chart-check cluster-test faults measure-tools

install: $(STAMP) $(GEN) $(CHROMIUM)

# One install gives the `turnforge` command, every service, the embedded stack and the test tools.
# llama-cpp-python builds from source once (a few minutes on 2 cores); pip caches the wheel after that.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(PY) -m pip install -q -e '.[local,dev]'
	touch $(STAMP)

# The review page's browser test (tests/test_review_page.py) drives Debian's chromium, headless; Playwright's own
# browsers are never downloaded. Installed here when missing, as root; elsewhere this says what to install.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "note: $(CHROMIUM) is missing: the review page's browser test needs Debian's chromium"; fi

# Python code is generated from the contracts, never edited by hand.
protos: $(GEN)
$(GEN) &: $(PROTOS) $(STAMP)
	$(PY) -m grpc_tools.protoc -I . --python_out=. --pyi_out=. $(PROTOS)

run: install
	$(VENV)/bin/turnforge run --config configs/default.yaml --embedded

# lint-imports checks the layers declared in pyproject.toml before any test runs.
test: install
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

# Unit tests only: no broker, database or model needed.
test-fast: install
	$(PY) -m pytest -q -m "not integration and not e2e and not model"

# Fault suite on real Apache Kafka (fetched once with Maven into ~/.cache/turnforge/kafka); prints its figures.
FAULT_TRAJECTORIES ?= 200
faults: install
	$(PY) e2e-tests/faults/run_faults.py --trajectories $(FAULT_TRAJECTORIES)

# Tool preparation on every Spider and demo database (templates alone, with the model) and the Seal-Tools seed sets;
# prints the measures as Markdown. Uses the configured PostgreSQL and model (see README, Tool preparation).
TOOLS_OUT ?= .turnforge/tool-measures
measure-tools: install
	$(PY) scripts/measure_tools.py --out $(TOOLS_OUT)

# The pipeline against a simulated batching model server at each concurrency (see docs/performance.md); its last
# line is one JSON object with every figure. The sandbox candidates alone: e2e-tests/benchmarks/bench_sandbox.py.
BENCH_CONCURRENCY ?= 8,64
bench: install
	$(PY) e2e-tests/benchmarks/bench_pipeline.py --concurrency $(BENCH_CONCURRENCY)

# The Helm chart and the Dockerfile, offline: hadolint, helm lint, helm template for the value sets in
# charts/turnforge/ci/, kubeconform on every manifest. Builds helm and kubeconform once (cached in ~/.cache/turnforge).
chart-check: install
	PY=$(PY) bash charts/check.sh

# The chart on a real Kubernetes API server (kwok, fake CPU and GPU nodes), the image built with buildah: server-side
# dry-run of every value set, installs, upgrade and uninstall checks; then a real kubelet node on which two releases
# finish small runs against tansu, PostgreSQL and the local model (e2e-tests/cluster/cluster-test.sh). Needs root and
# the Debian packages buildah podman runc containerd containernetworking-plugins mmdebstrap etcd-server; builds
# Kubernetes once (~12 min, cached).
cluster-test: install
	PY=$(PY) bash e2e-tests/cluster/cluster-test.sh

down: install
	$(VENV)/bin/turnforge down

clean:
	rm -rf $(VENV) .turnforge out protos/turnforge/v1/*_pb2.py protos/turnforge/v1/*_pb2.pyi
