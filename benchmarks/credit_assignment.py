"""Dense vs sequence credit in generation, judged independently (issue 11).

A LoRA SmolLM2-135M-Instruct learns to continue the first words of SST-2 sentences positively. Every arm is trained
on the same sentiment reward model (MiniLM fine-tuned on SST-2, `benchmarks/sentiment_models.py`) and differs only in
how that model's score reaches the tokens:

    sequence_last    the log-odds of "positive" on the last token (the TRL / OpenRLHF convention), RLOO baseline
    sequence_spread  the same score spread uniformly over the completion's tokens
    shaping          prefix differences of the same score, r_t = s(x, y_<=t) - s(x, y_<t) (SequenceRewardModelShaping)
    abc              the score spread by the reward model's last-layer [CLS] attention, beta=0.5 (Chan et al., 2024)
    trl_grpo         TRL's GRPOTrainer with the same score as its sequence reward (the external baseline)
    ppo_shaping      shaping's rewards with PPO's estimator instead of leave-one-out: a value head and GAE
                     (gamma 1, lambda 0.95), one PPO epoch per batch as in every other arm

Every 25 steps the policy continues 128 held-out prompts (first words of SST-2 dev sentences), sampled with a fixed
seed, and the completions are scored by the reward model (mean log-odds, share positive) and by the judge, a TF-IDF +
logistic-regression classifier that shares nothing with the reward model (share positive), with the KL to the starting
model (sum over the completion of log pi - log pi_0 on the sampled tokens), distinct-2 and the length in tokens.

    nice -n 10 python benchmarks/credit_assignment.py run --config benchmarks/configs/credit_assignment/abc.yaml --seed 1
    nice -n 10 python benchmarks/credit_assignment.py grid --seeds 1 2 3      # every arm; skips finished runs
    python benchmarks/credit_assignment.py report --write docs/credit_assignment.md  # tables + plots from the JSONs

One JSON per run in docs/results/credit_assignment/<arm>_seed<seed>.json (config, curve, train log, final held-out
completions). A run whose JSON exists is skipped, so an interrupted grid resumes where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import config_from_yaml, mean_std, run_once, write_between_markers  # noqa: E402

RESULTS_DIR = REPO_ROOT / "docs" / "results" / "credit_assignment"
CONFIG_DIR = REPO_ROOT / "benchmarks" / "configs" / "credit_assignment"
POLICY_CACHE = REPO_ROOT / ".cache" / "smollm2_135m_instruct"
ARMS = ("sequence_last", "shaping", "abc", "trl_grpo", "sequence_spread", "ppo_shaping")
"""In the order a grid runs them: the comparison the issue asks for first, then the uniform spread and PPO."""
ADAPTER_INIT_SEEDED = "seeded with config.seed before the trainer creates the LoRA adapters"
"""Recorded in every run since the fix; runs without it drew their LoRA A matrices from the process's RNG state, so a
rerun does not reproduce their curve (the report lists them)."""
CURVE_METRICS = ("rm_score", "rm_positive", "judge_positive", "kl", "distinct2", "length")


@dataclasses.dataclass
class CreditConfig:
    """One run; `benchmarks/configs/credit_assignment/<arm>.yaml` sets `arm` and nothing else differs between arms."""

    arm: str = "sequence_last"
    seed: int = 1
    max_steps: int = 100
    prompts_per_step: int = 4
    num_samples: int = 4
    max_new_tokens: int = 16
    temperature: float = 1.0
    learning_rate: float = 3e-4
    kl_coef: float = 0.05
    lora_r: int = 8
    lora_alpha: int = 16
    lora_target_modules: tuple = ("q_proj", "k_proj", "v_proj", "o_proj")
    abc_beta: float = 0.5
    prompt_words: int = 4
    min_sentence_words: int = 8
    num_train_prompts: int = 512
    num_eval_prompts: int = 128
    prompt_seed: int = 0
    eval_every: int = 25
    eval_batch_size: int = 32
    eval_seed: int = 1234
    num_threads: int = 1

    @classmethod
    def from_yaml(cls, path, **overrides) -> CreditConfig:
        config = config_from_yaml(cls, path, overrides)
        config.lora_target_modules = tuple(config.lora_target_modules)
        if config.arm not in ARMS:
            raise ValueError(f"{path}: arm={config.arm!r} is not one of {ARMS}.")
        return config

    @property
    def name(self) -> str:
        return f"{self.arm}_seed{self.seed}"


# > Prompts


def make_prompts(config: CreditConfig) -> tuple[list[str], list[str]]:
    """The fixed prompt sets: the first `prompt_words` words of SST-2 train (training) and dev (held out) sentences.

    Sentences are PTB-detokenized, kept when they have at least `min_sentence_words` words, de-duplicated by prompt,
    and shuffled with `prompt_seed` (the same for every run and arm); the first `num_*_prompts` are used. SST-2 dev
    shares treebank sentences with train, so a dev prompt that is also the prompt of any train sentence is left out
    of the held-out set: no held-out prompt was ever trained on.
    """
    from sentiment_models import detokenize_ptb, load_splits

    splits = load_splits()
    pools = {}
    for split in ("train", "validation"):
        seen, prompts = set(), []
        for sentence in splits[split][0]:
            words = detokenize_ptb(sentence).split()
            if len(words) < config.min_sentence_words:
                continue
            prompt = " ".join(words[: config.prompt_words])
            if prompt not in seen:
                seen.add(prompt)
                prompts.append(prompt)
        prompts.sort()
        random.Random(config.prompt_seed).shuffle(prompts)
        pools[split] = prompts
    train_pool = set(pools["train"])
    pools["validation"] = [p for p in pools["validation"] if p not in train_pool]
    out = []
    for split, count in (("train", config.num_train_prompts), ("validation", config.num_eval_prompts)):
        if len(pools[split]) < count:
            raise ValueError(f"SST-2 {split} gives {len(pools[split])} prompts, fewer than the {count} asked for.")
        out.append(pools[split][:count])
    return out[0], out[1]


# > Models


def policy_folder() -> Path:
    """SmolLM2-135M-Instruct saved once as safetensors (the packaged GGUF is slow to dequantize at every start)."""
    if not (POLICY_CACHE / "config.json").is_file():
        from trl_tokenlevel.models.packaged import load_smollm2

        model, tokenizer = load_smollm2()
        staging = Path(tempfile.mkdtemp(dir=POLICY_CACHE.parent if POLICY_CACHE.parent.exists() else None))
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        POLICY_CACHE.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(staging, POLICY_CACHE)
        except OSError:  # another run saved it first
            pass
    return POLICY_CACHE


def load_policy():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = policy_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, use_safetensors=True)
    return model, tokenizer


class SentimentScore:
    """The score every arm is trained on: log-odds of "positive" under the reward model, on `prompt + completion`.

    Built on `AttentionCreditReward(beta=0)` (the whole score on the last token) so that the sequence arms, the ABC arm
    and TRL's GRPO read the same text with the same tokenizer and the same score.
    """

    def __init__(self, rm, rm_tokenizer, policy_tokenizer):
        from trl_tokenlevel.rewards import AttentionCreditReward

        self._reward = AttentionCreditReward(rm, rm_tokenizer, policy_tokenizer, label_index=1, beta=0.0)
        self.__name__ = "sentiment_log_odds"

    def __call__(self, prompts, completions, completion_ids, **kwargs) -> list[float]:
        return [float(sum(r)) for r in self._reward(prompts, completions, completion_ids)]


def build_reward(config: CreditConfig, rm, rm_tokenizer, policy_tokenizer):
    from trl_tokenlevel.rewards import AttentionCreditReward, SequenceRewardModelShaping

    if config.arm in ("sequence_last", "sequence_spread", "trl_grpo"):
        return SentimentScore(rm, rm_tokenizer, policy_tokenizer)
    if config.arm in ("shaping", "ppo_shaping"):
        return SequenceRewardModelShaping(
            rm, rm_tokenizer, policy_tokenizer, label_index=1, score="log_odds", input_format="joined"
        )
    return AttentionCreditReward(rm, rm_tokenizer, policy_tokenizer, label_index=1, beta=config.abc_beta)


# > Held-out evaluation


def distinct_n(texts: list[str], n: int = 2) -> float:
    """Distinct word n-grams over all texts / all word n-grams (Li et al., 2016)."""
    grams = [tuple(words[i : i + n]) for words in (t.split() for t in texts) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


class HeldOutEvaluator:
    def __init__(self, config: CreditConfig, prompts: list[str], policy_tokenizer, score: SentimentScore, judge):
        self.config, self.prompts, self.tokenizer, self.score, self.judge = config, prompts, policy_tokenizer, score, judge

    def _completion_ids(self, row: list[int]) -> list[int]:
        eos = self.tokenizer.eos_token_id
        return row[: row.index(eos) + 1] if eos in row else row

    @torch.no_grad()
    def __call__(self, model) -> tuple[dict, list[str]]:
        from sentiment_models import LABELS  # noqa: F401  (judge and reward model: 1 = positive)

        from trl_tokenlevel.rewards.completion.reward_models import join_prompt_completion

        config, tokenizer = self.config, self.tokenizer
        was_training = model.training
        model.eval()
        side = tokenizer.padding_side
        tokenizer.padding_side = "left"
        completions_ids, kl = [], []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.eval_seed)
            for i in range(0, len(self.prompts), config.eval_batch_size):
                batch = tokenizer(self.prompts[i : i + config.eval_batch_size], return_tensors="pt", padding=True)
                out = model.generate(
                    **batch, do_sample=True, temperature=config.temperature, top_k=0, top_p=1.0,
                    max_new_tokens=config.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                )
                width = batch["input_ids"].shape[1]
                rows = [self._completion_ids(r) for r in out[:, width:].tolist()]
                completions_ids += rows
                kl += self._kl(model, batch, rows)
        tokenizer.padding_side = side
        model.train(was_training)
        texts = [tokenizer.decode(ids, skip_special_tokens=True) for ids in completions_ids]
        scores = self.score(self.prompts, texts, completions_ids)
        joined = [join_prompt_completion(p, t)[0] for p, t in zip(self.prompts, texts)]
        judged = [int(v) for v in self.judge.predict(joined)]
        metrics = {
            "rm_score": statistics.fmean(scores),
            "rm_positive": statistics.fmean(s > 0 for s in scores),
            "judge_positive": statistics.fmean(judged),
            "kl": statistics.fmean(kl),
            "distinct2": distinct_n(texts),
            "length": statistics.fmean(len(ids) for ids in completions_ids),
        }
        return metrics, texts

    def _kl(self, model, batch, rows: list[list[int]]) -> list[float]:
        """Per completion: sum over its tokens of log pi(y_t) - log pi_0(y_t) (pi_0 = the adapters disabled)."""
        pad = self.tokenizer.pad_token_id
        width = max(len(r) for r in rows)
        completion = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        input_ids = torch.cat([batch["input_ids"], completion], dim=1)
        attention = torch.cat([batch["attention_mask"], mask], dim=1)
        start = batch["input_ids"].shape[1]

        def logprobs():
            logits = model(input_ids=input_ids, attention_mask=attention).logits[:, start - 1 : -1].float()
            logits = logits / self.config.temperature
            return logits.log_softmax(-1).gather(-1, completion.unsqueeze(-1)).squeeze(-1)

        policy = logprobs()
        with model.disable_adapter():
            reference = logprobs()
        return ((policy - reference) * mask).sum(-1).tolist()


# > Runs


class EvalCallback:
    """Held-out evaluation at step 0 and every `eval_every` steps; training seconds exclude evaluation time."""

    def __new__(cls, *args, **kwargs):
        from transformers import TrainerCallback

        class _Callback(TrainerCallback):
            def __init__(self, evaluate, every: int):
                self.evaluate, self.every, self.curve, self.texts = evaluate, every, [], None
                self.train_seconds, self._started = 0.0, None

            def _record(self, step, model):
                metrics, self.texts = self.evaluate(model)
                self.curve.append({"step": step, "train_seconds": round(self.train_seconds, 2), **metrics})
                print(json.dumps(self.curve[-1]), flush=True)

            def on_train_begin(self, args, state, control, model=None, **kwargs):
                self._record(0, model)
                self._started = time.perf_counter()

            def on_step_end(self, args, state, control, model=None, **kwargs):
                self.train_seconds += time.perf_counter() - self._started
                if state.global_step % self.every == 0 or state.global_step == state.max_steps:
                    self._record(state.global_step, model)
                self._started = time.perf_counter()

        return _Callback(*args, **kwargs)


def credit_args(arm: str) -> dict:
    """How this library's trainer turns the arm's rewards into advantages (the other fields are the same for every
    arm): where a sequence score goes, the baseline, and the estimator."""
    if arm == "trl_grpo":
        raise ValueError("trl_grpo runs TRL's GRPOTrainer, not this library's trainer.")
    if arm == "ppo_shaping":  # PPO: a value head, GAE over the shaped per-token rewards
        return {"advantage_estimator": "gae", "gamma": 1.0, "lam": 0.95, "sequence_reward_placement": "last"}
    return {
        "advantage_estimator": "leave_one_out",
        "sequence_reward_placement": "spread" if arm == "sequence_spread" else "last",
        "group_baseline": "per_sequence" if arm == "sequence_last" else "per_position",
    }


def train_one(config: CreditConfig) -> dict:
    import datasets
    from peft import LoraConfig

    from sentiment_models import load_judge, load_reward_model

    from transformers import set_seed

    torch.set_num_threads(config.num_threads)
    # LoRA's A matrices are drawn when a trainer wraps the model; this library's trainer (since the seed fix) and TRL
    # 1.16's GRPOTrainer both seed before that themselves, and seeding here makes it explicit for every arm
    set_seed(config.seed)
    train_prompts, eval_prompts = make_prompts(config)
    policy, tokenizer = load_policy()
    rm, rm_tokenizer = load_reward_model(attn_implementation="eager")
    judge = load_judge()
    score = SentimentScore(rm, rm_tokenizer, tokenizer)
    reward = build_reward(config, rm, rm_tokenizer, tokenizer)
    callback = EvalCallback(HeldOutEvaluator(config, eval_prompts, tokenizer, score, judge), config.eval_every)
    dataset = datasets.Dataset.from_dict({"prompt": train_prompts})
    peft_config = LoraConfig(
        task_type="CAUSAL_LM", r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0,
        target_modules=list(config.lora_target_modules),
    )
    common = dict(
        output_dir=tempfile.mkdtemp(prefix=f"credit_{config.name}_"), max_steps=config.max_steps,
        learning_rate=config.learning_rate, lr_scheduler_type="constant", warmup_steps=0, logging_steps=1,
        report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, seed=config.seed,
        temperature=config.temperature, top_p=1.0, top_k=0, bf16=False, gradient_checkpointing=False,
    )
    if config.arm == "trl_grpo":
        from trl import GRPOConfig, GRPOTrainer

        args = GRPOConfig(
            per_device_train_batch_size=config.prompts_per_step * config.num_samples, num_generations=config.num_samples,
            max_completion_length=config.max_new_tokens, beta=config.kl_coef, **common,
        )
        trainer = GRPOTrainer(model=policy, reward_funcs=[reward], args=args, train_dataset=dataset,
                              processing_class=tokenizer, peft_config=peft_config, callbacks=[callback])
    else:
        from trl_tokenlevel import TokenLevelRLConfig, TokenLevelRLTrainer

        args = TokenLevelRLConfig(
            per_device_train_batch_size=config.prompts_per_step, num_samples=config.num_samples,
            max_new_tokens=config.max_new_tokens, max_prompt_length=None, kl_coef=config.kl_coef,
            kl_placement="reward", **credit_args(config.arm), **common,
        )
        trainer = TokenLevelRLTrainer(model=policy, reward_funcs=[reward], args=args, train_dataset=dataset,
                                      processing_class=tokenizer, peft_config=peft_config, callbacks=[callback])
    started = time.perf_counter()
    trainer.train()
    import peft
    import transformers
    import trl

    return {
        "name": config.name,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()},
        "adapter_init": ADAPTER_INIT_SEEDED,
        "curve": callback.curve,
        "final_eval_completions": [{"prompt": p, "completion": t} for p, t in zip(eval_prompts, callback.texts)],
        "train_log": [e for e in trainer.state.log_history if "loss" in e or "reward" in e or any("reward" in k for k in e)],
        "wall_seconds": round(time.perf_counter() - started, 1),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
                     "peft": peft.__version__},
        "machine": f"{os.cpu_count()} CPU cores, torch threads {config.num_threads}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def run(config: CreditConfig, results_dir: Path = RESULTS_DIR, force: bool = False) -> Path:
    """One run: `<results_dir>/<arm>_seed<seed>.json`, skipped when it exists (unless `force`) or another process runs
    it (its `.running` file; a killed run leaves it: delete it to rerun)."""
    path = Path(results_dir) / f"{config.name}.json"
    if force and not (path.parent / f"{path.stem}.running").exists():  # another process reruns it: leave its JSON
        path.unlink(missing_ok=True)
    if run_once(path, lambda: train_one(config), config.name):
        print(f"wrote {path}", flush=True)
    return path


def is_unseeded(path: Path) -> bool:
    """Whether `path` holds a run from before the adapter-initialisation seed fix (no `adapter_init` record)."""
    try:
        return json.loads(Path(path).read_text()).get("adapter_init") != ADAPTER_INIT_SEEDED
    except FileNotFoundError:
        return False


def run_grid(seeds, arms, results_dir: Path = RESULTS_DIR, rerun_unseeded: bool = False) -> None:
    """Every arm x seed whose JSON is missing; with `rerun_unseeded`, also the runs from before the seed fix (their
    JSON is replaced by the rerun's). Two grids can share the queue."""
    for seed in seeds:
        for arm in arms:
            config = CreditConfig.from_yaml(CONFIG_DIR / f"{arm}.yaml", seed=seed)
            path = Path(results_dir) / f"{config.name}.json"
            run(config, Path(results_dir), force=rerun_unseeded and is_unseeded(path))


# > Report


def load_results(results_dir: Path = RESULTS_DIR) -> dict[str, list[dict]]:
    by_arm: dict[str, list[dict]] = {}
    for path in sorted(Path(results_dir).glob("*_seed*.json")):
        result = json.loads(path.read_text())
        by_arm.setdefault(result["config"]["arm"], []).append(result)
    return by_arm


def shared_seeds(by_arm: dict[str, list[dict]]) -> tuple[dict[str, list[dict]], list[str]]:
    """The runs of the seeds every arm has, and the names of the others: arms are compared on one seed set, so a
    grid caught half-way through a new seed does not mix 5-seed and 3-seed means in one table."""
    seed_sets = [{r["config"]["seed"] for r in runs} for runs in by_arm.values()]
    shared = set.intersection(*seed_sets)
    if not shared:
        raise SystemExit("No seed has a run for every arm: finish one seed of every arm "
                         "(python benchmarks/credit_assignment.py grid --seeds 1) before reporting.")
    kept = {arm: [r for r in runs if r["config"]["seed"] in shared] for arm, runs in by_arm.items()}
    left_out = [r["name"] for runs in by_arm.values() for r in runs if r["config"]["seed"] not in shared]
    return kept, left_out


def _mean_std(values: list[float]) -> str:
    return mean_std(values, digits=3)


def steps_to_reach(curve: list[dict], target: float, metric: str = "rm_score") -> int | None:
    """The first step at which `metric` reaches `target`, interpolated linearly between evaluations; None if never."""
    for before, point in zip(curve, curve[1:]):
        if point[metric] >= target:
            if before[metric] >= target:
                return before["step"]
            share = (target - before[metric]) / (point[metric] - before[metric])
            return round(before["step"] + share * (point["step"] - before["step"]))
    return None


def value_at_kl(curve: list[dict], kl: float, metric: str = "rm_score") -> float | None:
    """`metric` where the run's KL to the start first reaches `kl`, interpolated linearly between the two evaluations
    around it; None if the run never gets that far."""
    for before, point in zip(curve, curve[1:]):
        if point["kl"] >= kl:
            if point["kl"] == before["kl"]:
                return point[metric]
            share = (kl - before["kl"]) / (point["kl"] - before["kl"])
            return before[metric] + max(0.0, share) * (point[metric] - before[metric])
    return None


def at_kl(runs: list[dict], kl: float, metric: str = "rm_score") -> list[float]:
    """`value_at_kl` of each run that gets as far as `kl` (the others are left out)."""
    return [v for v in (value_at_kl(r["curve"], kl, metric) for r in runs) if v is not None]


EQUAL_KL_LEVELS = (1.0, 3.0, 6.0, 10.0)
"""KL levels (nats per completion) of the equal-KL table: within the range every arm crosses."""


def equal_kl_table(by_arm: dict, order: list[str]) -> list[str]:
    """Reward-model score and judge share positive at equal KL to the start, per arm: the comparison that removes the
    'faster per step because it moves further' effect (interpolated between evaluations, so coarse)."""
    lines = ["", "At equal KL to the starting policy (each seed's curve interpolated between evaluations; mean ± std "
             "over the seeds that reach the level): reward-model log-odds / judge share positive", "",
             "| KL (nats) | " + " | ".join(f"`{arm}`" for arm in order) + " |", "|---|" + "---|" * len(order)]
    for level in EQUAL_KL_LEVELS:
        cells = []
        for arm in order:
            scores, judged = at_kl(by_arm[arm], level), at_kl(by_arm[arm], level, "judge_positive")
            missing = len(by_arm[arm]) - len(scores)
            cell = f"{_mean_std(scores)} / {statistics.fmean(judged):.3f}" if scores else "not reached"
            cells.append(cell + (f" ({missing} seed(s) not reached)" if scores and missing else ""))
        lines.append(f"| {level:g} | " + " | ".join(cells) + " |")
    return lines


def versus(baseline: list[float], other: list[float]) -> str:
    """`other`'s mean minus `baseline`'s, called ahead or behind when the difference exceeds the larger of the two
    standard deviations over seeds (the reading's rule), level otherwise."""
    if len(baseline) < 2 or len(other) < 2:
        return "n/a (under 2 seeds)"
    diff = statistics.fmean(other) - statistics.fmean(baseline)
    verdict = "level" if abs(diff) <= max(statistics.stdev(baseline), statistics.stdev(other)) else (
        "ahead" if diff > 0 else "behind")
    return f"{diff:+.3f} {verdict}"


def versus_table(by_arm: dict, order: list[str], baseline: str = "sequence_last") -> list[str]:
    """Each arm against `baseline` in held-out reward-model log-odds, at every evaluation step and at every KL level
    of the equal-KL table: the ahead / behind / level calls the reading makes, computed."""
    others = [arm for arm in order if arm != baseline]
    if baseline not in by_arm or not others:
        return []
    lines = ["", f"Against `{baseline}`: difference of the mean held-out reward-model log-odds, called ahead or behind "
             "when it exceeds the larger of the two standard deviations over seeds, level otherwise", "",
             "| at | " + " | ".join(f"`{arm}`" for arm in others) + " |", "|---|" + "---|" * len(others)]
    steps = [p["step"] for p in by_arm[baseline][0]["curve"]][1:]
    for i, step in enumerate(steps, start=1):
        base = [r["curve"][i]["rm_score"] for r in by_arm[baseline]]
        cells = [versus(base, [r["curve"][i]["rm_score"] for r in by_arm[arm]]) for arm in others]
        lines.append(f"| step {step} | " + " | ".join(cells) + " |")
    for level in EQUAL_KL_LEVELS:
        base = at_kl(by_arm[baseline], level)
        lines.append(f"| KL {level:g} | " + " | ".join(versus(base, at_kl(by_arm[arm], level)) for arm in others) + " |")
    return lines


def report(results_dir: Path = RESULTS_DIR, plot_dir: Path | None = None) -> str:
    by_arm = load_results(results_dir)
    if not by_arm:
        raise SystemExit(f"No results in {results_dir}: run the grid first.")
    by_arm, left_out = shared_seeds(by_arm)
    order = [arm for arm in ARMS if arm in by_arm]
    lines = [
        "| arm | seeds | steps | RM log-odds | RM positive | judge positive | KL to start | distinct-2 | length | "
        "RM log-odds at mid-run | judge positive at mid-run | train s/step | steps to reach sequence_last's mean final RM score (per seed, interpolated) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    target = None
    if "sequence_last" in by_arm:
        target = statistics.fmean(r["curve"][-1]["rm_score"] for r in by_arm["sequence_last"])
    start = by_arm[order[0]][0]["curve"][0]
    lines.append(
        f"| start (step 0) | - | 0 | {start['rm_score']:.3f} | {start['rm_positive']:.3f} | {start['judge_positive']:.3f} | "
        f"0 | {start['distinct2']:.3f} | {start['length']:.1f} | - | - | - | - |"
    )
    for arm in order:
        runs = by_arm[arm]
        finals = [r["curve"][-1] for r in runs]
        cells = [_mean_std([f[m] for f in finals]) for m in CURVE_METRICS]
        per_step = _mean_std([f["train_seconds"] / max(f["step"], 1) for f in finals])
        mids = [r["curve"][(len(r["curve"]) - 1) // 2] for r in runs]
        mid = f"{_mean_std([m['rm_score'] for m in mids])} (step {mids[0]['step']}) | {_mean_std([m['judge_positive'] for m in mids])}"
        reach = "-"
        if target is not None:
            steps = [steps_to_reach(r["curve"], target) for r in runs]
            reach = ", ".join("not reached" if s is None else str(s) for s in steps)
        seeds = ",".join(str(r["config"]["seed"]) for r in runs)
        lines.append(f"| {arm} | {seeds} | {finals[0]['step']} | " + " | ".join(cells) + f" | {mid} | {per_step} | {reach} |")
    lines += ["", "Every held-out evaluation, mean ± std over seeds: reward-model log-odds / judge share positive / KL (nats):",
              "", "| step | " + " | ".join(f"`{arm}`" for arm in order) + " |", "|---|" + "---|" * len(order)]
    steps = [p["step"] for p in by_arm[order[0]][0]["curve"]]
    for i, step in enumerate(steps):
        cells = []
        for arm in order:
            points = [r["curve"][i] for r in by_arm[arm] if len(r["curve"]) > i]
            cells.append(f"{_mean_std([p['rm_score'] for p in points])} / {statistics.fmean(p['judge_positive'] for p in points):.3f}"
                         f" / {statistics.fmean(p['kl'] for p in points):.2f}")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    lines += equal_kl_table(by_arm, order)
    lines += versus_table(by_arm, order)
    if left_out:
        lines += ["", f"Left out of every table and plot, as not every arm has their seed yet: {', '.join(left_out)}."]
    unseeded = [r["name"] for arm in order for r in by_arm[arm] if r.get("adapter_init") != ADAPTER_INIT_SEEDED]
    if unseeded:
        lines += ["", f"Runs from before the adapter-initialisation seed fix ({len(unseeded)} of "
                  f"{sum(len(by_arm[a]) for a in order)}; a rerun does not reproduce their curve exactly): {', '.join(unseeded)}."]
    table = "\n".join(lines)
    if plot_dir is not None:
        plot(by_arm, order, Path(plot_dir))
    return table


def plot(by_arm: dict, order: list[str], plot_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    for x_key, suffix, xlabel in (("step", "steps", "optimizer steps"), ("train_seconds", "seconds", "training seconds (evaluation excluded)")):
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        for ax, (metric, label) in zip(axes, (("rm_score", "reward model: mean log-odds positive (trained on)"),
                                               ("judge_positive", "judge (TF-IDF + LR): share positive"),
                                               ("kl", "KL to the starting policy (nats / completion)"))):
            for arm in order:
                runs = by_arm[arm]
                n = min(len(r["curve"]) for r in runs)
                values = np.array([[p[metric] for p in r["curve"][:n]] for r in runs])
                xs = np.array([[p[x_key] for p in r["curve"][:n]] for r in runs]).mean(0)
                mean, std = values.mean(0), values.std(0, ddof=1) if len(runs) > 1 else np.zeros(n)
                ax.plot(xs, mean, label=f"{arm} (n={len(runs)})")
                ax.fill_between(xs, mean - std, mean + std, alpha=0.2)
            ax.set_xlabel(xlabel)
            ax.set_title(label, fontsize=9)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle("Held-out prompts (128, SST-2 dev): mean ± std over seeds", fontsize=10)
        fig.tight_layout()
        fig.savefig(plot_dir / f"credit_assignment_{suffix}.png", dpi=110)
        plt.close(fig)
    # reward against KL: a denser credit that only moves further from the start is not better
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, (metric, label) in zip(axes, (("rm_score", "reward model: mean log-odds positive"),
                                           ("judge_positive", "judge: share positive"))):
        for arm in order:
            kl = [p["kl"] for r in by_arm[arm] for p in r["curve"]]
            values = [p[metric] for r in by_arm[arm] for p in r["curve"]]
            ax.scatter(kl, values, s=14, label=arm, alpha=0.8)
        ax.set_xlabel("KL to the starting policy (nats / completion)")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Every held-out evaluation of every seed: reward against KL", fontsize=10)
    fig.tight_layout()
    fig.savefig(plot_dir / "credit_assignment_kl.png", dpi=110)
    plt.close(fig)


# > CLI


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run", help="one run (skipped when its JSON exists)")
    one.add_argument("--config", required=True)
    one.add_argument("--seed", type=int)
    one.add_argument("--max_steps", type=int)
    one.add_argument("--learning_rate", type=float)
    one.add_argument("--results_dir", default=str(RESULTS_DIR))
    one.add_argument("--force", action="store_true", help="rerun even if the JSON exists (overwrites it)")
    grid = sub.add_parser("grid", help="every arm x seed, in order; finished runs are skipped")
    grid.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    grid.add_argument("--arms", nargs="+", default=list(ARMS))
    grid.add_argument("--results_dir", default=str(RESULTS_DIR))
    grid.add_argument("--rerun_unseeded", action="store_true",
                      help="also rerun (and replace) the runs from before the adapter-initialisation seed fix")
    rep = sub.add_parser("report", help="table (stdout) and plots from the JSONs")
    rep.add_argument("--results_dir", default=str(RESULTS_DIR))
    rep.add_argument("--plot_dir", default=str(REPO_ROOT / "docs"))
    rep.add_argument("--write", default=None, help="markdown file whose text between the table markers is replaced")
    opts = parser.parse_args(argv)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    if opts.command == "run":
        config = CreditConfig.from_yaml(opts.config, seed=opts.seed, max_steps=opts.max_steps, learning_rate=opts.learning_rate)
        run(config, Path(opts.results_dir), force=opts.force)
    elif opts.command == "grid":
        run_grid(opts.seeds, opts.arms, Path(opts.results_dir), opts.rerun_unseeded)
    else:
        table = report(Path(opts.results_dir), Path(opts.plot_dir))
        print(table)
        if opts.write:
            write_table(Path(opts.write), table)


TABLE_BEGIN, TABLE_END = "<!-- credit_assignment table: begin -->", "<!-- credit_assignment table: end -->"


def write_table(path: Path, table: str) -> None:
    """Replace the text between the two table markers of `path` (generated; edit the script, not the doc)."""
    write_between_markers(path, table, TABLE_BEGIN, TABLE_END)


if __name__ == "__main__":
    main()
