"""A quiet run: coefficients and weights reach the trackers once and when they change (log_history keeps them all),
known upstream noise is filtered, multi-process launches that are not one distributed run are refused, INFO lines
print once under `accelerate launch`, and a TensorBoard run records the per-reward means and the RL metrics."""

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
from transformers import TrainerCallback

from test_trainer import make_trainer
from trl_tokenlevel.rewards import EntitySpanReward, TokenAccuracyReward
from trl_tokenlevel.runtime import check_distributed_launch, filter_upstream_noise


ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1",
       "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


class SentLogs(TrainerCallback):
    """What the console and the trackers receive."""

    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if "loss" in logs:
            self.logs.append(dict(logs))


def test_constants_are_sent_at_the_start_and_when_they_change_and_history_keeps_every_step(tmp_path):
    sent = SentLogs()
    trainer = make_trainer(
        tmp_path, reward_funcs=[TokenAccuracyReward(), EntitySpanReward()], max_steps=5, logging_steps=1,
        ce_coef_schedule={"type": "step", "values": [1.0, 0.0], "boundaries": [3]},
    )
    trainer.add_callback(sent)
    trainer.train()
    assert len(sent.logs) == 5
    # ce_coef: 1.0 at the first log, 0.0 from the log at the end of step 3 (the value step 4 uses), sent once each
    assert [log.get("ce_coef") for log in sent.logs] == [1.0, None, 0.0, None, None]
    for constant in ("rl_coef", "kl_coef", "reward_weights/TokenAccuracyReward", "reward_weights/EntitySpanReward"):
        assert [constant in log for log in sent.logs] == [True, False, False, False, False], constant
    assert all("loss" in log and "rewards/TokenAccuracyReward/mean" in log for log in sent.logs)  # metrics: always
    history = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["ce_coef"] for h in history] == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert [h["reward_weights/EntitySpanReward"] for h in history] == [1.0] * 5


def test_known_upstream_warnings_are_filtered_and_others_are_not():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filter_upstream_noise()
        warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning)
        warnings.warn("'pin_memory' argument is set as true but no accelerator is found, then device pinned memory "
                      "won't be used.", UserWarning)
        warnings.warn("a FutureWarning worth reading", FutureWarning)
    assert [str(w.message) for w in caught] == ["a FutureWarning worth reading"]
    record = logging.LogRecord("bitsandbytes.backends.cpu.ops", logging.WARNING, __file__, 1,
                               "Failed to load CPU gemm_4bit_forward from kernels-community: %s.", ("x",), None)
    assert not logging.getLogger("bitsandbytes.backends.cpu.ops").filter(record)


def test_importing_the_library_hides_the_bitsandbytes_kernel_message():
    # with TRL_TOKENLEVEL_SHOW_UPSTREAM_NOISE=1 the same import prints it (on AVX512 CPUs without `kernels`)
    pytest.importorskip("bitsandbytes")
    env = {**ENV, "TRL_TOKENLEVEL_SHOW_UPSTREAM_NOISE": "0"}
    result = subprocess.run([sys.executable, "-c", "import trl_tokenlevel, bitsandbytes, peft"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "gemm_4bit_forward" not in result.stderr


def test_every_recipe_starts_without_the_bitsandbytes_kernel_message():
    """Each recipe imports trl_tokenlevel before transformers/trl/datasets, so the filter is in place when they load
    bitsandbytes (`--help` imports everything a run imports at module level)."""
    pytest.importorskip("bitsandbytes")
    env = {**ENV, "TRL_TOKENLEVEL_SHOW_UPSTREAM_NOISE": "0"}
    for recipe in sorted((ROOT / "recipes").glob("*.py")):
        result = subprocess.run([sys.executable, str(recipe), "--help"], env=env, cwd=ROOT, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0 and "usage:" in result.stdout, (recipe.name, result.stderr[-2000:])
        assert "gemm_4bit_forward" not in result.stderr, recipe.name


def test_a_launch_whose_processes_would_train_separate_copies_is_refused():
    single = SimpleNamespace(world_size=1, use_cpu=False, device="cpu", output_dir="outputs/ner_lora")
    with pytest.raises(RuntimeError, match=r"WORLD_SIZE=2 .* run of 1 process.*Fix: on CPU, pass `--use_cpu true`"):
        check_distributed_launch(single, {"WORLD_SIZE": "2", "RANK": "1"})
    check_distributed_launch(single, {})  # a plain `python script.py`
    check_distributed_launch(SimpleNamespace(world_size=2), {"WORLD_SIZE": "2"})  # real DDP


PROBE = """
import logging, sys
from transformers import TrainingArguments
from trl_tokenlevel.runtime import check_distributed_launch, setup_script_logging
args = TrainingArguments(output_dir=sys.argv[1], report_to="none", use_cpu=sys.argv[2] == "1")
setup_script_logging(args)
logging.getLogger("probe").info("INFO-LINE from process %d", args.process_index)
check_distributed_launch(args)
sys.stdout.write(f"LAUNCH-OK {args.world_size}\\n"); sys.stdout.flush()  # one write: two processes share the pipe
"""


@pytest.mark.slow
def test_two_process_cpu_launch_is_one_run_and_prints_info_once(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(ROOT / "recipes/accelerate_configs/cpu_2proc.yaml"), str(script), str(tmp_path / "out")]
    env = {k: v for k, v in ENV.items() if k != "ACCELERATE_USE_CPU"}
    ok = subprocess.run([*launch, "1"], env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr[-3000:]
    output = ok.stdout + ok.stderr
    assert output.count("LAUNCH-OK 2") == 2 and output.count("INFO-LINE") == 1, output[-3000:]


def test_tensorboard_run_records_per_reward_means_and_rl_metrics(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = make_trainer(
        tmp_path, reward_funcs=[TokenAccuracyReward(), EntitySpanReward()], max_steps=3, logging_steps=1,
        report_to=["tensorboard"], kl_coef=0.05,
    )
    trainer.train()
    events = list(tmp_path.rglob("events.out.tfevents.*"))  # default: <output_dir>/runs/<date>_<host>
    assert events
    accumulator = EventAccumulator(str(events[0].parent)).Reload()
    tags = set(accumulator.Tags()["scalars"])
    wanted = {"train/rewards/TokenAccuracyReward/mean", "train/rewards/EntitySpanReward/mean", "train/reward",
              "train/advantages/mean", "train/advantages/std", "train/kl", "train/entropy", "train/loss",
              "train/rl_coef", "train/reward_weights/EntitySpanReward"}
    assert wanted <= tags, sorted(tags)
    means = [e.value for e in accumulator.Scalars("train/rewards/TokenAccuracyReward/mean")]
    history = [h["rewards/TokenAccuracyReward/mean"] for h in trainer.state.log_history if "loss" in h]
    assert means == pytest.approx(history, rel=1e-5)  # the values, not just the names
