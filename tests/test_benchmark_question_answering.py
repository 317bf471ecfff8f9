"""benchmarks/question_answering.py without training: arm configs, the disjoint per-seed question split, resume by
name, the report's paired differences and the arm chosen on dev."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
CONFIGS = ROOT / "benchmarks" / "configs" / "question_answering"

import question_answering as bench  # noqa: E402


def test_arm_configs_differ_from_the_default_only_in_arm_rl_coef_and_rl_start_step():
    default = bench.QAConfig()
    coefs = {}
    for arm in bench.ARMS:
        config = bench.QAConfig.from_yaml(CONFIGS / f"{arm}.yaml", seed=2)
        assert config.arm == arm and config.seed == 2
        changed = {k for k, v in vars(config).items() if v != getattr(default, k)} - {"arm", "seed", "rl_coef", "rl_start_step"}
        assert changed == set(), (arm, changed)
        coefs[arm] = (config.rl_coef, config.rl_start_step)
    assert coefs == {"ce": (0.0, 0), "ce_rl": (1.0, 0), "ce_rl_0.3": (0.3, 0), "ce_then_rl": (1.0, 50)}
    # the warm start is shared by every arm of a seed, and only by them
    keys = {bench.QAConfig.from_yaml(CONFIGS / f"{arm}.yaml", seed=2).warm_key() for arm in bench.ARMS}
    assert len(keys) == 1 and bench.QAConfig(seed=3).warm_key() not in keys


def test_bad_configs_are_refused(tmp_path):
    (tmp_path / "typo.yaml").write_text("arm: ce\nrl_cof: 1.0\n")
    with pytest.raises(ValueError, match="unknown keys \\['rl_cof'\\]"):
        bench.QAConfig.from_yaml(tmp_path / "typo.yaml")
    (tmp_path / "arm.yaml").write_text("arm: ppo\n")
    with pytest.raises(ValueError, match="arm='ppo' is not one of"):
        bench.QAConfig.from_yaml(tmp_path / "arm.yaml")
    (tmp_path / "mixed.yaml").write_text("arm: ce\nrl_coef: 1.0\n")
    with pytest.raises(ValueError, match="only the 'ce' arm has rl_coef 0"):
        bench.QAConfig.from_yaml(tmp_path / "mixed.yaml")


def test_the_schedule_arm_trains_with_ce_alone_until_rl_start_step_then_adds_rl(tmp_path):
    from trl_tokenlevel.dynamic.state import build_coef_schedules

    def rl_weights(config):
        args = bench._args(config, str(tmp_path), max_steps=config.steps, **bench.rl_coef_args(config))
        schedule = build_coef_schedules(args, ("rl", "ce"))
        return [schedule["rl"](t) for t in (0, 49, 50, 99)], [schedule["ce"](t) for t in (0, 99)]

    late = bench.QAConfig.from_yaml(CONFIGS / "ce_then_rl.yaml")
    assert rl_weights(late) == ([0.0, 0.0, 1.0, 1.0], [1.0, 1.0])
    assert rl_weights(bench.QAConfig.from_yaml(CONFIGS / "ce_rl.yaml")) == ([1.0] * 4, [1.0, 1.0])
    (tmp_path / "late.yaml").write_text("arm: ce_then_rl\nrl_coef: 1.0\nrl_start_step: 100\n")
    with pytest.raises(ValueError, match="late.yaml: rl_start_step=100 must be in"):
        bench.QAConfig.from_yaml(tmp_path / "late.yaml")
    with pytest.raises(ValueError, match="rl_start_step=-1 must be in"):
        bench.QAConfig(arm="ce_then_rl", rl_coef=1.0, rl_start_step=-1)


def test_warm_and_continuation_questions_are_disjoint_cover_the_split_and_depend_on_the_seed():
    warm, rest = bench.split_training_questions(100, 30, seed=1)
    assert len(warm) == 30 and len(rest) == 70
    assert sorted(warm + rest) == list(range(100))
    assert (warm, rest) == bench.split_training_questions(100, 30, seed=1)
    assert warm != bench.split_training_questions(100, 30, seed=2)[0]
    with pytest.raises(ValueError, match="warm_questions=100"):
        bench.split_training_questions(100, 100, seed=1)


def fake_result(arm, rl_coef, seed, dev_f1, test_em, test_f1):
    return {"name": f"{arm}_seed{seed}", "config": {"arm": arm, "seed": seed, "rl_coef": rl_coef},
            "warm_start": {"dev": {"exact_match": 40.0 + seed, "f1": 50.0 + seed}},
            "dev": {"exact_match": dev_f1 - 10, "f1": dev_f1}, "test": {"exact_match": test_em, "f1": test_f1},
            "num_dev_questions": 1145, "num_test_questions": 1230, "seconds_per_step": 5.0}


def test_report_pairs_seeds_with_ce_and_marks_the_rl_arm_chosen_on_dev(tmp_path):
    runs = [("ce", 0.0, 1, 60.0, 50.0, 61.0), ("ce", 0.0, 2, 62.0, 52.0, 63.0),
            ("ce_rl", 1.0, 1, 61.0, 51.0, 63.0), ("ce_rl", 1.0, 2, 61.0, 52.0, 66.0),
            ("ce_rl_0.3", 0.3, 1, 65.0, 49.0, 60.0), ("ce_rl_0.3", 0.3, 2, 61.0, 50.0, 62.0),
            ("ce_then_rl", 1.0, 1, 64.0, 50.0, 61.0)]
    for row in runs:
        (tmp_path / f"{row[0]}_seed{row[2]}.json").write_text(json.dumps(fake_result(*row)))
    table = bench.report(tmp_path)
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()}
    # compared on seed 1, the only seed every RL arm has: ce_rl_0.3 65 > ce_then_rl 64 > ce_rl 61, so ce_rl_0.3 is
    # chosen (though ce_rl is better on test, and ce_then_rl's one seed beats ce_rl_0.3's two-seed mean, 63)
    assert "ce_rl_0.3 (chosen on dev)" in rows and "ce_rl" in rows
    assert "| 2.50 ± 0.71 (seeds 1,2) |" in rows["ce_rl"]  # test F1 - CE per seed: +2, +3
    assert "| -1.00 ± 0.00 (seeds 1,2) |" in rows["ce_rl_0.3 (chosen on dev)"]
    assert "| 62.00 ± 1.41 |" in rows["ce"]  # test F1 of CE: 61, 63
    assert rows["warm start (CE, shared)"].startswith("| warm start (CE, shared) | 0 | - | 1,2 | 41.50 ± 0.71 | 51.50 ± 0.71 |")
    assert rows["ce"].startswith("| ce | 0 | - | 1,2 |") and rows["ce_rl"].startswith("| ce_rl | 1 | 0 | 1,2 |")
    assert "over the seeds every RL arm has (1)." in table
    for seed in (1, 2):  # one RL arm left: nothing was chosen, nothing is marked
        (tmp_path / f"ce_rl_0.3_seed{seed}.json").unlink()
    (tmp_path / "ce_then_rl_seed1.json").unlink()
    assert "chosen" not in bench.report(tmp_path)
    doc = tmp_path / "doc.md"
    doc.write_text(f"intro\n{bench.TABLE_BEGIN}\nold\n{bench.TABLE_END}\noutro\n")
    bench.write_table(doc, table)
    assert doc.read_text() == f"intro\n{bench.TABLE_BEGIN}\n{table}\n{bench.TABLE_END}\noutro\n"


def test_a_finished_or_running_run_is_skipped(tmp_path, monkeypatch):
    calls = []
    fake = {"name": "x", "dev": {"f1": 1.0}, "test": {"f1": 1.0}}
    monkeypatch.setattr(bench, "train_one", lambda config, work_dir: calls.append(config.name) or fake)
    config = bench.QAConfig(arm="ce_rl", rl_coef=1.0, seed=5)
    bench.run(config, tmp_path, tmp_path / "work")
    assert calls == ["ce_rl_seed5"] and (tmp_path / "ce_rl_seed5.json").is_file()
    bench.run(config, tmp_path, tmp_path / "work")
    (tmp_path / "ce_seed5.running").touch()
    bench.run(bench.QAConfig(arm="ce", seed=5), tmp_path, tmp_path / "work")
    assert calls == ["ce_rl_seed5"] and not (tmp_path / "ce_rl_seed5.running").exists()


def test_benchmarks_doc_table_is_the_report_of_the_committed_results():
    if not any(bench.RESULTS_DIR.glob("*_seed*.json")):
        pytest.skip("no committed QA results yet")
    doc = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert f"{bench.TABLE_BEGIN}\n{bench.report()}\n{bench.TABLE_END}" in doc, (
        "docs/benchmarks.md is stale: python benchmarks/question_answering.py report --write docs/benchmarks.md"
    )
