"""Multi-process training: 2 processes (DDP over gloo on CPU) and 1 process with the same global batch take the same
step, and logged metrics are reduced over ranks, for token classification and for generation. Launched with the
shipped `cpu_2proc.yaml` Accelerate config."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch


ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "distributed_step.py"
GENERATION_SCRIPT = ROOT / "tests" / "distributed_generation_step.py"
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
          str(ROOT / "recipes/accelerate_configs/cpu_2proc.yaml")]


def run(command, out_dir):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("ACCELERATE_USE_CPU", None)
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    logs = [json.loads(p.read_text()) for p in sorted(out_dir.glob("log_rank*.json"))]
    return logs, torch.load(out_dir / "params.pt")


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    logs_1, params_1 = run([sys.executable, str(SCRIPT), str(one), "8"], one)
    logs_2, params_2 = run([*LAUNCH, str(SCRIPT), str(two), "4"], two)
    assert [entry["world_size"] for entry in logs_2] == [2, 2]

    # the loss normalisation holds across processes: same loss, grad norm and parameters after one SGD step
    log_1, log_2 = logs_1[0]["log"], logs_2[0]["log"]
    assert log_2["loss"] == pytest.approx(log_1["loss"], rel=1e-5)
    assert log_2["grad_norm"] == pytest.approx(log_1["grad_norm"], rel=1e-5)
    assert log_1["kl"] > 1e-3  # the policy starts away from the reference: the KL term moves the gradient
    start = __import__("tiny").tiny_bert().state_dict()
    moved = 0
    for name, value in params_1.items():
        torch.testing.assert_close(params_2[name], value, rtol=1e-4, atol=1e-5, msg=name)
        moved += int(not torch.allclose(value, start[name]))
    assert moved > 10

    # logged metrics are reduced over ranks: each rank saw half the batch, yet both log the global mean
    local_means = [entry["local"]["reward"][0] / entry["local"]["reward"][1] for entry in logs_2]
    assert abs(local_means[0] - local_means[1]) > 1e-3
    pooled = sum(e["local"]["reward"][0] for e in logs_2) / sum(e["local"]["reward"][1] for e in logs_2)
    for entry in logs_2:
        assert entry["log"]["reward"] == pytest.approx(pooled, rel=1e-6)
        assert entry["log"]["reward"] == pytest.approx(log_1["reward"], rel=1e-6)
        for key in ("ce_loss", "entropy", "kl", "rewards/EntitySpanReward/mean", "advantages/std"):
            assert entry["log"][key] == pytest.approx(log_1[key], rel=1e-5), key


@pytest.mark.slow
@pytest.mark.parametrize(
    ("advantage_estimator", "kind"), [("leave_one_out", "llama"), ("gae", "llama"), ("gae", "t5"), ("leave_one_out", "marian")]
)
def test_generation_two_processes_match_one_process(tmp_path, advantage_estimator, kind):
    """A causal LM, or an encoder-decoder (T5, Marian): 8 prompts x 3 completions in one process, or 4 prompts per
    process in two, with sampling that does not depend on the split. The ranks hold different numbers of completion tokens, so the same step needs the loss
    divided by the token count of the whole step (all processes), not by each rank's own. With "gae" the value head
    (applied outside the DDP forward) must get the same, averaged gradient too."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    logs_1, params_1 = run([sys.executable, str(GENERATION_SCRIPT), str(one), "8", advantage_estimator, kind], one)
    logs_2, params_2 = run([*LAUNCH, str(GENERATION_SCRIPT), str(two), "4", advantage_estimator, kind], two)
    assert [entry["world_size"] for entry in logs_2] == [2, 2]

    # the ranks' token counts differ by >5%: a per-rank normalisation would take another step
    tokens = [entry["local"]["completion_length"][0] for entry in logs_2]
    assert abs(tokens[0] - tokens[1]) > 0.05 * max(tokens), tokens
    assert sum(tokens) == logs_1[0]["local"]["completion_length"][0]  # the same completions, split in two

    log_1, log_2 = logs_1[0]["log"], logs_2[0]["log"]
    assert log_2["loss"] == pytest.approx(log_1["loss"], rel=1e-4)
    assert log_2["grad_norm"] == pytest.approx(log_1["grad_norm"], rel=1e-4)
    builder = {"llama": "tiny_lm.tiny_llama", "t5": "tiny_seq2seq.tiny_t5", "marian": "tiny_seq2seq.tiny_marian"}[kind]
    module, name = builder.split(".")
    start = getattr(__import__(module), name)(seed=0).state_dict()
    moved = 0
    for name, value in params_1.items():
        torch.testing.assert_close(params_2[name], value, rtol=1e-4, atol=1e-6, msg=name)
        moved += int(name not in start or not torch.allclose(value, start[name]))
    assert moved > 10
    if advantage_estimator == "gae":
        assert any(name.startswith("value_head.") and value.abs().sum() > 0 for name, value in params_1.items())

    # logged metrics are reduced over ranks: both ranks log the pooled mean, which is the 1-process value
    for key in ("reward", "completion_length"):
        local = [entry["local"][key] for entry in logs_2]
        assert abs(local[0][0] / local[0][1] - local[1][0] / local[1][1]) > 1e-3, key
        pooled = sum(s for s, _ in local) / sum(c for _, c in local)
        for entry in logs_2:
            assert entry["log"][key] == pytest.approx(pooled, rel=1e-6), key
    keys = ["reward", "rewards/pays_for_w7/mean", "rewards/prefers_short/mean", "completion_length", "entropy", "kl",
            "policy_loss", "advantages/std"] + (["value_loss"] if advantage_estimator == "gae" else [])
    for entry in logs_2:
        for key in keys:
            assert entry["log"][key] == pytest.approx(log_1[key], rel=1e-4, abs=1e-7), key


@pytest.mark.parametrize("name", ["multi_gpu", "fsdp", "deepspeed_zero2", "deepspeed_zero3", "cpu_2proc"])
def test_shipped_accelerate_configs_parse(name):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(ROOT / "recipes" / "accelerate_configs" / f"{name}.yaml"))
    expected = {"multi_gpu": "MULTI_GPU", "fsdp": "FSDP", "cpu_2proc": "MULTI_GPU"}.get(name, "DEEPSPEED")
    assert config.distributed_type.value == expected
    if name.startswith("deepspeed"):
        assert config.deepspeed_config["zero_stage"] == int(name[-1])
    if name == "fsdp":
        assert config.fsdp_config["fsdp_version"] == 2 and config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    if name == "cpu_2proc":
        assert config.use_cpu and config.num_processes == 2
