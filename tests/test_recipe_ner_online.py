"""Tier 3: recipes/ner_online.py as a subprocess, on a tiny random BERT and a tiny CoNLL-format folder."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from tiny import SPECIALS, WORDS, synthetic_sentence, word_tokenizer
from transformers import BertConfig, BertForTokenClassification

from trl_tokenlevel.data import CONLL2003_LABELS


ROOT = Path(__file__).resolve().parents[1]
TINY_TO_CONLL = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-MISC", 4: "I-MISC"}  # synthetic LOC plays MISC


def write_conll(path: Path, num_sentences: int, seed: int) -> None:
    rng, lines = random.Random(seed), ["-DOCSTART- -X- -X- O", ""]
    for _ in range(num_sentences):
        tokens, tags = synthetic_sentence(rng)
        lines += [f"{t} NN O {TINY_TO_CONLL[g]}" for t, g in zip(tokens, tags)] + [""]
    path.write_text("\n".join(lines) + "\n")


def test_recipe_streams_new_data_and_writes_curves_plot_and_table(tmp_path):
    data = tmp_path / "conll"
    data.mkdir()
    for split, n, seed in (("train", 160, 0), ("valid", 60, 1), ("test", 10, 2)):
        write_conll(data / f"{split}.txt", n, seed)
    model_dir = tmp_path / "tiny-bert"
    config = BertConfig(
        vocab_size=len(SPECIALS) + len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=len(CONLL2003_LABELS),
    )
    BertForTokenClassification(config).save_pretrained(model_dir)
    word_tokenizer().save_pretrained(model_dir)

    out = tmp_path / "out"
    command = [
        sys.executable, "recipes/ner_online.py", "--config", "recipes/configs/ner_online.yaml",
        "--dataset_dir", str(data), "--model_name_or_path", str(model_dir), "--max_old_train", "64",
        "--max_stream", "32", "--max_eval", "20", "--num_train_epochs", "1", "--online_batch_size", "8",
        "--replay_batch_size", "4", "--online_eval_steps", "2", "--replay_buffer_sizes", "0", "16",
        "--output_dir", str(out), "--plot_path", str(tmp_path / "online.png"), "--table_path", str(tmp_path / "t.md"),
        "--learning_rate", "3e-3",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    curves = json.loads((out / "curves.json").read_text())
    assert list(curves) == ["no replay", "replay 16 (+4/update)"]
    for curve in curves.values():
        assert curve["examples_seen"] == [0, 16, 32]  # evaluated at start, every 2 updates of 8, at the end
        assert all(0.0 <= f <= 1.0 for f in curve["old_f1"] + curve["new_f1"])
    # both runs start from the same deployed weights
    assert curves["no replay"]["old_f1"][0] == curves["replay 16 (+4/update)"]["old_f1"][0]
    assert (tmp_path / "online.png").stat().st_size > 10_000
    table = (tmp_path / "t.md").read_text().splitlines()
    assert len(table) == 13 and table[2].startswith("| no replay |") and table[7].startswith("| new sentences streamed | 0 | 16 | 32 |")
    start = f"{100 * curves['no replay']['old_f1'][0]:.1f}"  # percent, as every other doc
    assert table[2].split(" | ")[1] == start and table[9].startswith(f"| no replay, old F1 | {start} |")
