"""benchmarks/credit_assignment.py without models: fixed prompt sets, configs, resume by name, and the report."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
CONFIGS = ROOT / "benchmarks" / "configs" / "credit_assignment"

import credit_assignment as bench  # noqa: E402


def test_every_arm_config_differs_from_the_default_only_in_the_arm():
    default = bench.CreditConfig()
    for arm in bench.ARMS:
        config = bench.CreditConfig.from_yaml(CONFIGS / f"{arm}.yaml", seed=2)
        assert config.arm == arm and config.seed == 2
        changed = {k for k, v in vars(config).items() if v != getattr(default, k)} - {"arm", "seed"}
        assert changed == set(), (arm, changed)  # abc.yaml restates the default beta
    assert default.max_steps >= 100


def test_the_arms_of_this_librarys_trainer_differ_only_in_how_the_score_becomes_advantages():
    from trl_tokenlevel import TokenLevelRLConfig

    expected = {  # arm: (estimator, sequence placement, baseline)
        "sequence_last": ("leave_one_out", "last", "per_sequence"),
        "sequence_spread": ("leave_one_out", "spread", "per_position"),
        "shaping": ("leave_one_out", "last", "per_position"),
        "abc": ("leave_one_out", "last", "per_position"),
        "ppo_shaping": ("gae", "last", "per_position"),  # the baseline field is unused by GAE
    }
    assert set(expected) == set(bench.ARMS) - {"trl_grpo"}
    for arm, (estimator, placement, baseline) in expected.items():
        args = TokenLevelRLConfig(output_dir="/tmp/x", report_to="none", use_cpu=True, **bench.credit_args(arm))
        assert (args.advantage_estimator, args.sequence_reward_placement, args.group_baseline) == (estimator, placement, baseline), arm
        assert (args.gamma, args.lam) == (1.0, 0.95)
    with pytest.raises(ValueError, match="GRPOTrainer"):
        bench.credit_args("trl_grpo")


def test_bad_configs_are_refused(tmp_path):
    (tmp_path / "typo.yaml").write_text("arm: abc\nlearning_rte: 1.0\n")
    with pytest.raises(ValueError, match="unknown keys \\['learning_rte'\\]"):
        bench.CreditConfig.from_yaml(tmp_path / "typo.yaml")
    (tmp_path / "arm.yaml").write_text("arm: ppo\n")
    with pytest.raises(ValueError, match="arm='ppo' is not one of"):
        bench.CreditConfig.from_yaml(tmp_path / "arm.yaml")


def test_prompt_sets_are_fixed_disjoint_and_the_same_for_every_seed():
    from trl_tokenlevel.data.sst2 import default_sst2_dir

    if default_sst2_dir() is None:
        pytest.skip("the shared SST-2 copy (../shared/data/sst2) is absent")
    train, held_out = bench.make_prompts(bench.CreditConfig(seed=1))
    again = bench.make_prompts(bench.CreditConfig(seed=3, arm="abc"))
    assert (train, held_out) == again
    assert len(train) == 512 and len(held_out) == 128 and len(set(train)) == 512
    assert all(len(p.split()) == 4 for p in train + held_out)
    assert not set(held_out) & set(train)


def test_distinct_n():
    assert bench.distinct_n(["a b c", "a b d"]) == pytest.approx(3 / 4)
    assert bench.distinct_n(["a"]) == 0.0


def fake_result(arm, seed, finals):
    curve = [{"step": 0, "train_seconds": 0.0, "rm_score": 0.2, "rm_positive": 0.5, "judge_positive": 0.5, "kl": 0.0,
              "distinct2": 0.9, "length": 16.0}]
    for step, score in finals:
        curve.append({**curve[0], "step": step, "train_seconds": step * 8.0, "rm_score": score, "kl": 0.1 * step})
    return {"name": f"{arm}_seed{seed}", "config": {"arm": arm, "seed": seed}, "curve": curve}


def test_report_reads_every_json_and_counts_steps_to_the_baselines_final_score(tmp_path):
    runs = {("sequence_last", 1): [(50, 0.5), (100, 1.0)], ("sequence_last", 2): [(50, 0.7), (100, 1.2)],
            ("abc", 1): [(50, 1.2), (100, 1.5)], ("abc", 2): [(50, 0.9), (100, 1.3)]}
    for (arm, seed), finals in runs.items():
        result = fake_result(arm, seed, finals)
        if seed == 2:  # runs since the seed fix say so; the others are listed as not reproducible
            result["adapter_init"] = bench.ADAPTER_INIT_SEEDED
        (tmp_path / f"{arm}_seed{seed}.json").write_text(json.dumps(result))
    table = bench.report(tmp_path, plot_dir=tmp_path)
    assert table.splitlines()[-1] == ("Runs from before the adapter-initialisation seed fix (2 of 4; a rerun does not "
                                      "reproduce their curve exactly): sequence_last_seed1, abc_seed1.")
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()}
    assert "1.100 ± 0.141" in rows["sequence_last"]  # final RM score: mean ± std over the two seeds
    # target 1.1, interpolated between evaluations: abc seed 1 (0.2 -> 1.2 over steps 0-50) at 45, seed 2 (0.9 -> 1.3
    # over 50-100) at 75; sequence_last seed 1 ends at 1.0, under the mean, seed 2 (0.7 -> 1.2) at 90
    assert rows["abc"].endswith("| 45, 75 |")
    assert rows["sequence_last"].endswith("| not reached, 90 |")
    for plot in ("steps", "seconds", "kl"):
        assert (tmp_path / f"credit_assignment_{plot}.png").is_file(), plot
    doc = tmp_path / "doc.md"
    doc.write_text(f"intro\n{bench.TABLE_BEGIN}\nold\n{bench.TABLE_END}\noutro\n")
    bench.write_table(doc, table)
    assert doc.read_text() == f"intro\n{bench.TABLE_BEGIN}\n{table}\n{bench.TABLE_END}\noutro\n"


def test_the_report_compares_arms_on_the_seeds_they_all_have(tmp_path):
    runs = {("sequence_last", 1): 1.0, ("sequence_last", 2): 1.2, ("abc", 1): 1.5, ("abc", 2): 1.3, ("abc", 4): 9.0}
    for (arm, seed), final in runs.items():
        result = fake_result(arm, seed, [(50, final), (100, final)])
        result["adapter_init"] = bench.ADAPTER_INIT_SEEDED
        (tmp_path / f"{arm}_seed{seed}.json").write_text(json.dumps(result))
    table = bench.report(tmp_path)
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()}
    assert rows["abc"].startswith("| abc | 1,2 | 100 | 1.400 ± 0.141 |"), rows["abc"]  # seed 4 is not in the mean
    assert table.splitlines()[-1] == "Left out of every table and plot, as not every arm has their seed yet: abc_seed4."
    (tmp_path / "sequence_last_seed1.json").unlink()
    (tmp_path / "sequence_last_seed2.json").unlink()
    (tmp_path / "sequence_last_seed3.json").write_text(json.dumps(fake_result("sequence_last", 3, [(100, 1.0)])))
    with pytest.raises(SystemExit, match="No seed has a run for every arm"):
        bench.report(tmp_path)


def test_a_finished_or_running_run_is_skipped(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(bench, "train_one", lambda config: calls.append(config.name) or {"name": config.name})
    config = bench.CreditConfig(arm="abc", seed=5)
    bench.run(config, tmp_path)
    assert calls == ["abc_seed5"] and json.loads((tmp_path / "abc_seed5.json").read_text())["name"] == "abc_seed5"
    bench.run(config, tmp_path)
    (tmp_path / "shaping_seed5.running").touch()
    bench.run(bench.CreditConfig(arm="shaping", seed=5), tmp_path)
    assert calls == ["abc_seed5"] and not (tmp_path / "abc_seed5.running").exists()


def test_the_doc_table_is_the_report_of_the_committed_results():
    if not any(bench.RESULTS_DIR.glob("*_seed*.json")):
        pytest.skip("no committed credit-assignment results yet")
    doc = (ROOT / "docs" / "credit_assignment.md").read_text(encoding="utf-8")
    assert f"{bench.TABLE_BEGIN}\n{bench.report()}\n{bench.TABLE_END}" in doc, (
        "docs/credit_assignment.md is stale: python benchmarks/credit_assignment.py report --write docs/credit_assignment.md"
    )


def test_value_at_kl_interpolates_between_evaluations_and_the_report_compares_arms_at_equal_kl(tmp_path):
    curve = [{"step": 0, "kl": 0.0, "rm_score": 0.0, "judge_positive": 0.5},
             {"step": 50, "kl": 2.0, "rm_score": 1.0, "judge_positive": 0.6},
             {"step": 100, "kl": 6.0, "rm_score": 3.0, "judge_positive": 0.8}]
    assert bench.value_at_kl(curve, 1.0) == 0.5 and bench.value_at_kl(curve, 3.0) == 1.5
    assert bench.value_at_kl(curve, 6.0, "judge_positive") == 0.8 and bench.value_at_kl(curve, 7.0) is None
    # a run that moves further per step (KL 0.1 * step) and one that moves half as far, same score per step
    for arm, seed, kl_per_step in [("sequence_last", 1, 0.05), ("shaping", 1, 0.1)]:
        result = fake_result(arm, seed, [(50, 0.7), (100, 1.2)])
        for point in result["curve"]:
            point["kl"] = kl_per_step * point["step"]
        (tmp_path / f"{arm}_seed{seed}.json").write_text(json.dumps(result))
    table = bench.report(tmp_path)
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    # at KL 3: sequence_last is at step 60 (0.7 + 0.1 * 0.5 = 0.8), shaping at step 30 (0.2 + 0.6 * 0.5 = 0.5)
    assert rows["3"] == "| 3 | 0.800 / 0.500 | 0.500 / 0.500 |", rows["3"]
    assert rows["6"] == "| 6 | not reached | 0.800 / 0.500 |", rows["6"]  # sequence_last ends at KL 5


def test_versus_calls_ahead_or_behind_only_beyond_the_larger_std_and_the_report_tabulates_it(tmp_path):
    assert bench.versus([1.0, 1.2], [1.5, 1.3]) == "+0.300 ahead"  # stds 0.141 and 0.141
    assert bench.versus([1.0, 1.2], [1.0, 1.6]) == "+0.200 level"  # the other arm's std, 0.424, is the larger
    assert bench.versus([1.0, 1.2], [0.7, 0.8]) == "-0.350 behind"
    assert bench.versus([1.0], [2.0, 2.1]).startswith("n/a")
    runs = {("sequence_last", 1): [(50, 1.0), (100, 2.0)], ("sequence_last", 2): [(50, 1.2), (100, 2.2)],
            ("shaping", 1): [(50, 1.5), (100, 2.0)], ("shaping", 2): [(50, 1.3), (100, 2.3)]}
    for (arm, seed), finals in runs.items():
        result = fake_result(arm, seed, finals)
        result["adapter_init"] = bench.ADAPTER_INIT_SEEDED
        (tmp_path / f"{arm}_seed{seed}.json").write_text(json.dumps(result))
    rows = {line.split(" | ")[0].strip("| "): line for line in bench.report(tmp_path).splitlines()}
    assert rows["step 50"] == "| step 50 | +0.300 ahead |" and rows["step 100"] == "| step 100 | +0.050 level |"
    # KL is 0.1 * step in both arms, so at KL 10 (step 100) the comparison is step 100's
    assert rows["KL 10"] == "| KL 10 | +0.050 level |" and rows["KL 6"] == "| KL 6 | +0.250 ahead |"  # at step 60


def test_grid_reruns_only_the_runs_from_before_the_seed_fix_when_asked(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(bench, "train_one", lambda config: calls.append(config.name) or
                        {"name": config.name, "adapter_init": bench.ADAPTER_INIT_SEEDED})
    (tmp_path / "abc_seed1.json").write_text(json.dumps({"name": "abc_seed1"}))  # before the fix
    (tmp_path / "abc_seed2.json").write_text(json.dumps({"name": "abc_seed2", "adapter_init": bench.ADAPTER_INIT_SEEDED}))
    bench.run_grid([1, 2, 3], ["abc"], tmp_path)
    assert calls == ["abc_seed3"]  # by default only what is missing
    bench.run_grid([1, 2, 3], ["abc"], tmp_path, rerun_unseeded=True)
    assert calls == ["abc_seed3", "abc_seed1"]  # the old run is replaced; the seeded ones are kept
    assert not bench.is_unseeded(tmp_path / "abc_seed1.json") and not bench.is_unseeded(tmp_path / "missing.json")
    (tmp_path / "abc_seed4.json").write_text(json.dumps({"name": "abc_seed4"}))  # old, but another process reruns it
    (tmp_path / "abc_seed4.running").touch()
    bench.run_grid([4], ["abc"], tmp_path, rerun_unseeded=True)
    assert calls[-1] == "abc_seed1" and (tmp_path / "abc_seed4.json").is_file()  # skipped, and its JSON kept
