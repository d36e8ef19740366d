# The README's two commands: `make demo` (the main job) and `make test` (the whole suite).
# Both create the virtualenv and install what they need on a fresh machine.
SHELL := bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# This machine's pip configuration names local index folders that may be absent; pip
# warns once per package. Keep the log readable.
QUIET_PIP := 2>&1 | { grep -v '^WARNING: Location' || true; }
INSTALLED := $(VENV)/.installed
SAMPLE := replay/samples

.PHONY: demo replay-demo test bench build sample pictures prometheus clean

# torch first, pinned: the CPU build lies on the build machines' disk, while a bare
# `torch` requirement (from sentence-transformers) would pull a multi-GB CUDA build.
# Then the static and int8 encoders are built from the installed MiniLM weights (~20 s each, once).
$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0 $(QUIET_PIP)
	AIFM_PURE_PYTHON=1 $(PIP) install -e '.[embeddings,demo,dev,otel-test]' $(QUIET_PIP)
	$(PY) -m pip check
	$(VENV)/bin/aifm encoder build
	$(VENV)/bin/aifm encoder build --encoder minilm-int8
	touch $(INSTALLED)

# The per-event path compiled from its sources (monitor/build.py), again after any of them changed:
# an editable install's extensions would otherwise be older than the code (monitor.build then runs those from source).
# The install above builds none (AIFM_PURE_PYTHON=1): this is the one compilation, ~1 minute on two cores;
# the compiler's log is shown only if it fails.
BUILT := $(VENV)/.built
$(BUILT): $(INSTALLED) setup.py $(wildcard monitor/*.py monitor/*.pxd monitor/*/*.py monitor/*/*.pxd)
	$(PY) setup.py -q build_ext --inplace > $(VENV)/build.log 2>&1 || { cat $(VENV)/build.log; exit 1; }
	touch $(BUILT)

build: $(BUILT)

# The main job on the embedded default: broker, worker, live traffic, findings as they fire.
demo: $(BUILT)
	$(VENV)/bin/aifm demo --exit-when-done

# The same sample history replayed offline through the same pipeline.
replay-demo: $(INSTALLED)
	@mkdir -p build
	$(VENV)/bin/aifm replay $(SAMPLE)/events.jsonl.gz --boundaries $(SAMPLE)/boundaries \
		--incidents $(SAMPLE)/incidents.jsonl --out build/demo-findings.jsonl --show-findings

test: $(BUILT) prometheus
	$(VENV)/bin/ruff check monitor tests bench setup.py conftest.py
	$(PY) -m pytest -q

# prometheus and promtool (Debian package) for the rule tests and the end-to-end tier.
prometheus:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		export DEBIAN_FRONTEND=noninteractive; \
		$$sudo apt-get install -y -q prometheus >/dev/null 2>&1 || { $$sudo apt-get update -q && $$sudo apt-get install -y -q prometheus; }; \
		command -v promtool >/dev/null || { echo "could not install the Debian package prometheus (promtool)" >&2; exit 1; }; }

# The README's dashboard pictures: the end-to-end tier's run, drawn into docs/img/.
pictures: $(INSTALLED) prometheus
	AIFM_PICTURES_DIR=docs/img $(PY) -m pytest -q tests/test_e2e_prometheus.py

bench: $(BUILT)
	$(PY) bench/bench_builds.py --require-compiled
	$(PY) bench/bench_detectors.py
	$(PY) bench/bench_refusal.py
	$(PY) bench/bench_replay.py
	$(PY) bench/bench_pipeline.py
	$(PY) bench/bench_instructions.py
	$(PY) bench/bench_worker.py
	$(PY) bench/bench_tune.py
	$(PY) bench/bench_embedding_drift.py
	$(PY) bench/bench_embeddings.py
	$(PY) bench/bench_encoders.py
	$(PY) bench/bench_replay_embeddings.py
	$(PY) bench/bench_semantic.py
	$(PY) bench/bench_diurnal.py
	$(PY) bench/bench_rate_limits.py
	$(PY) bench/bench_tcpd.py

# Regenerate the bundled sample (tests check that the committed one matches).
sample: $(INSTALLED)
	$(VENV)/bin/aifm simulate --out $(SAMPLE) --events 44000 --seed 7 --bad-lines 5

clean:
	rm -rf $(VENV) build
	find monitor \( -name "*.so" -o -name "*.c" \) -delete
