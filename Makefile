# Every target creates or reuses .venv and installs what it needs: on a fresh machine these
# commands are all the set-up there is.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEPS   := pyproject.toml setup.py
DEMO_OUT ?= demo-out

.PHONY: install demo test bench bench-gpu lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per set of extras, redone when the dependency files change.
$(VENV)/.stamp-base: $(BIN)/python $(DEPS)
	$(BIN)/pip install --quiet -e .
	@touch $@
$(VENV)/.stamp-dev: $(BIN)/python $(DEPS)
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@
$(VENV)/.stamp-bench: $(BIN)/python $(DEPS)
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	@touch $@

install: $(VENV)/.stamp-base

demo: $(VENV)/.stamp-base
	$(BIN)/python -m redpajama ingest data/samples/inputs -o $(DEMO_OUT) --workers 2
	$(BIN)/python -m redpajama ccnet $(DEMO_OUT) --workers 2
	$(BIN)/python -m redpajama signals $(DEMO_OUT) --workers 2
	$(BIN)/python -m redpajama minhash $(DEMO_OUT) --workers 2
	$(BIN)/python -m redpajama dedup $(DEMO_OUT) --threshold 0.8
	@$(BIN)/python data/samples/show_demo.py $(DEMO_OUT)

test: $(VENV)/.stamp-dev
	$(BIN)/pytest -q

bench: $(VENV)/.stamp-bench
	$(BIN)/python benchmarks/ingest_throughput.py
	$(BIN)/python benchmarks/extraction_quality.py
	$(BIN)/python benchmarks/signals_throughput.py
	$(BIN)/python benchmarks/minhash_throughput.py
	$(BIN)/python benchmarks/ccnet_throughput.py
	$(BIN)/python benchmarks/dedup_lsh_scale.py --quick
	$(BIN)/python benchmarks/dedup_quality.py
	$(BIN)/python benchmarks/rules_throughput.py
	$(BIN)/python benchmarks/engines_throughput.py

# Training and kernel benchmarks: they need a CUDA GPU and exit with a message without one.
bench-gpu: $(VENV)/.stamp-dev
	$(BIN)/python benchmarks/kernels_elementwise.py
	$(BIN)/python benchmarks/train_throughput.py --model 468m --seq-len 2048 --batch-size 16
	$(BIN)/python benchmarks/moe_experts.py
	$(BIN)/python benchmarks/attention.py
	$(BIN)/python benchmarks/decode_attention.py
	$(BIN)/python benchmarks/sequence_mixers.py
	$(BIN)/python benchmarks/ladder_decode.py step --model 468m

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(DEMO_OUT) build dist *.egg-info .pytest_cache .ruff_cache
