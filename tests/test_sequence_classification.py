"""Tier 1-2: the sequence-classification path on a tiny random BertForSequenceClassification (no downloads):
the reward plumbing, learning from rewards alone, gradient-accumulation invariance, refused fields and bad labels,
and saved models (full, LoRA merged) that give the trainer's predictions in `pipeline("text-classification")`."""

from __future__ import annotations

import random

import datasets
import pytest
import torch
from test_config_paths import another_value
from tiny import SPECIALS, WORDS, assert_same_update, fixed_gumbel, perturb, synthetic_dataset, tiny_bert, word_tokenizer
from tiny_lm import lm_tokenizer, prompt_dataset, tiny_llama
from transformers import BertConfig, BertForSequenceClassification, pipeline

import trl_tokenlevel.sequence_classification.trainer as trainer_module
from trl_tokenlevel import (
    GenerationRLConfig,
    SequenceClassificationRLConfig,
    SequenceClassificationRLTrainer,
    TokenClassificationRLConfig,
    TokenLevelRLConfig,
    TokenLevelRLTrainer,
)
from trl_tokenlevel.base_config import fields_of_path
from trl_tokenlevel.rewards import (
    CorrectLabelReward,
    CostMatrixReward,
    TokenAccuracyReward,
)
from trl_tokenlevel.rewards.sequence import compute_sequence_rewards

LABELS = ["red", "green", "blue"]
COMMON = dict(report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0)
OWN = set(fields_of_path(SequenceClassificationRLConfig))
SEQUENCE_ONLY = sorted(OWN - set(fields_of_path(TokenClassificationRLConfig)) - set(fields_of_path(GenerationRLConfig)))
NOT_SEQUENCE = sorted((set(fields_of_path(TokenClassificationRLConfig)) | set(fields_of_path(GenerationRLConfig))) - OWN)


def synthetic_texts(num_texts: int, seed: int = 0, classes: tuple[int, ...] = (0, 1, 2)) -> datasets.Dataset:
    """Filler words w0-w9 and one keyword, from w10-w14 for `red`, w15-w19 `green`, w20-w24 `blue`; the gold labels
    are drawn from `classes`."""
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(num_texts):
        words = [f"w{rng.randrange(10)}" for _ in range(rng.randint(3, 8))]
        label = rng.choice(classes)
        words.insert(rng.randrange(len(words) + 1), f"w{10 + 5 * label + rng.randrange(5)}")
        texts.append(" ".join(words))
        labels.append(label)
    features = datasets.Features({"idx": datasets.Value("int32"), "sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=LABELS)})  # fmt: skip
    return datasets.Dataset.from_dict({"idx": list(range(num_texts)), "sentence": texts, "label": labels}, features)


def tiny_classifier(seed: int = 0, hidden: int = 32) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(SPECIALS) + len(WORDS), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=64, num_labels=len(LABELS),
    )
    return BertForSequenceClassification(config)


def make_trainer(tmp_path, model=None, train=None, eval_dataset=None, **overrides):
    rewards = overrides.pop("reward_funcs", None)
    peft_config = overrides.pop("peft_config", None)
    values = dict(output_dir=str(tmp_path), per_device_train_batch_size=32, learning_rate=3e-3, logging_steps=4,
                  eval_strategy="no", **COMMON)  # fmt: skip
    values.update(overrides)
    return TokenLevelRLTrainer(
        model=model if model is not None else tiny_classifier(), reward_funcs=rewards,
        args=SequenceClassificationRLConfig(**values), train_dataset=train if train is not None else synthetic_texts(512),
        eval_dataset=eval_dataset if eval_dataset is not None else synthetic_texts(128, seed=1),
        processing_class=word_tokenizer(), peft_config=peft_config,
    )


# ---------------------------------------------------------------------- rewards
def test_compute_sequence_rewards_checks_shape_and_finiteness():
    def nan_at_sample_1_sequence_0(sampled_labels, gold_labels, label_names, **kwargs):
        rewards = torch.zeros(sampled_labels.shape)
        rewards[1, 0] = float("nan")
        return rewards

    def one_per_sequence(sampled_labels, gold_labels, label_names, **kwargs):
        return torch.zeros(sampled_labels.shape[1])

    sampled, gold = torch.tensor([[0, 1], [2, 1]]), torch.tensor([0, 1])
    total, per_reward = compute_sequence_rewards([CorrectLabelReward(), CorrectLabelReward()], [1.0, 0.5], sampled, gold,
                                                 LABELS)  # fmt: skip
    assert total.tolist() == [[1.5, 1.5], [0.0, 1.5]] and set(per_reward) == {"CorrectLabelReward", "CorrectLabelReward_1"}
    with pytest.raises(ValueError, match=r"'nan_at_sample_1_sequence_0' returned nan at sample 1, sequence 0"):
        compute_sequence_rewards([nan_at_sample_1_sequence_0], [1.0], sampled, gold, LABELS)
    with pytest.raises(ValueError, match=r"'one_per_sequence' returned shape \(2,\), expected \(2, 2\)"):
        compute_sequence_rewards([one_per_sequence], [1.0], sampled, gold, LABELS)


# ---------------------------------------------------------------------- learning
@pytest.fixture
def one_thread():
    """One intra-op thread: tiny matrices, and 2 cores shared with other jobs (about 5x faster here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_learns_a_classification_task_from_rewards_alone(tmp_path, one_thread):
    """Gold labels are `red` or `blue`; the policy has all 3 actions. (With all 3 classes gold, REINFORCE from a
    random encoder often starves one class: its expected gradient is p(gold) times CE's, so a class the early policy
    gives little mass to learns slowly. CE warm-up or `ce_coef > 0` avoid that; here the rewards are alone.)"""
    trainer = make_trainer(tmp_path, ce_coef=0.0, num_train_epochs=4, disable_dropout=True, train=synthetic_texts(
        512, seed=5, classes=(0, 2)), eval_dataset=synthetic_texts(128, seed=1, classes=(0, 2)))  # fmt: skip
    assert type(trainer) is SequenceClassificationRLTrainer
    before = trainer.evaluate()["eval_accuracy"]
    start = {k: v.clone() for k, v in trainer.model.named_parameters()}
    trainer.train()
    after = trainer.evaluate()
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert logs[-1]["reward_greedy"] > logs[0]["reward_greedy"] + 0.4 and logs[-1]["reward"] > logs[0]["reward"] + 0.2
    assert before < 0.6 and after["eval_accuracy"] > 0.9, (before, after)  # 3 actions; majority class ~ 0.5
    assert after["eval_f1_red"] > 0.9 and after["eval_f1_blue"] > 0.9
    assert logs[-1]["ce_coef"] == 0.0 and logs[-1]["sample_greedy_agreement"] > logs[0]["sample_greedy_agreement"]
    changed = [k for k, v in trainer.model.named_parameters() if not torch.equal(v, start[k])]
    assert "classifier.weight" in changed and len(changed) > 10
    for key in ("rewards/CorrectLabelReward/mean", "reward_greedy", "advantages/mean", "advantages/std", "entropy",
                "ce_loss"):
        assert key in logs[-1], key


def _deterministic_samples(logits, num_samples, temperature=1.0):
    """Gumbel-max sampling with noise fixed per (sample, label): identical however the batch is split."""
    noise = fixed_gumbel(num_samples, 1, 1, logits.shape[-1])
    return (logits.detach().unsqueeze(0) / temperature + noise).argmax(-1)


@pytest.mark.parametrize("kl_coef", [0.0, 0.1])
def test_gradient_accumulation_invariance(tmp_path, monkeypatch, kl_coef, one_thread):
    """1 micro-batch of 8 and 2 micro-batches of 4 give the same loss and the same SGD update; for the KL arm the
    policy is first moved away from its frozen reference, so the KL term has a gradient to get wrong."""
    monkeypatch.setattr(trainer_module, "sample_actions", _deterministic_samples)
    train = synthetic_texts(8, seed=3)
    results = []
    for batch_size, accumulation in ((8, 1), (4, 2)):
        trainer = make_trainer(
            tmp_path / f"{batch_size}x{accumulation}", train=train,
            reward_funcs=[CorrectLabelReward(), CostMatrixReward({"green": {"blue": 3.0}})],
            per_device_train_batch_size=batch_size, gradient_accumulation_steps=accumulation, max_steps=1, optim="sgd",
            learning_rate=1.0, lr_scheduler_type="constant", disable_dropout=True, logging_steps=1, kl_coef=kl_coef,
            entropy_coef=0.01, max_grad_norm=0.0, num_samples=3,
        )
        if kl_coef:
            perturb(trainer.model, scale=0.2)
        trainer.train()
        results.append((trainer.state.log_history[0], {k: v.detach().clone() for k, v in trainer.model.named_parameters()}))
    assert_same_update(results, tiny_classifier().state_dict(), kl_coef)


def test_ce_warm_up_then_rl(tmp_path, one_thread):
    trainer = make_trainer(tmp_path, rl_start_step=3, max_steps=6, logging_steps=1, kl_coef=0.1, disable_dropout=True)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "rl_active" in h]
    assert [h["rl_active"] for h in logs] == [0.0] * 3 + [1.0] * 3
    assert all("reward" not in h for h in logs[:3]) and all("reward" in h for h in logs[3:])
    assert logs[0]["kl"] == pytest.approx(0.0, abs=1e-6) and logs[-1]["kl"] > 1e-5


def test_the_kl_term_pulls_a_perturbed_policy_back_to_its_reference(tmp_path, one_thread):
    """With CE off and RL not yet started, the loss is kl_coef * KL alone: descending it (full batch, the same 32
    examples each step) must shrink the KL."""
    trainer = make_trainer(tmp_path, train=synthetic_texts(32), ce_coef=0.0, rl_start_step=100, kl_coef=1.0, max_steps=10,
                           logging_steps=1, disable_dropout=True, learning_rate=1e-3, lr_scheduler_type="constant")  # fmt: skip
    perturb(trainer.model, scale=0.3)
    trainer.train()
    kls = [h["kl"] for h in trainer.state.log_history if "kl" in h]
    assert kls[0] > 1e-3 and kls[-1] < 0.5 * kls[0], kls


# ---------------------------------------------------------------------- config paths and bad input
def entry_point(args, train=None, **kwargs):
    return TokenLevelRLTrainer(model=tiny_classifier(), args=args, train_dataset=train if train is not None else
                               synthetic_texts(8), processing_class=word_tokenizer(), **kwargs)  # fmt: skip


@pytest.mark.parametrize("name", NOT_SEQUENCE)
def test_other_paths_fields_are_refused_on_a_sequence_classifier(tmp_path, name):
    f = {**fields_of_path(TokenClassificationRLConfig), **fields_of_path(GenerationRLConfig)}[name]
    args = TokenLevelRLConfig(output_dir=str(tmp_path), **COMMON, **{name: another_value(f)})
    with pytest.raises(ValueError, match=rf"^{name}=.* is a setting of \w+RLTrainer .*SequenceClassificationRLTrainer"):
        entry_point(args)


@pytest.mark.parametrize("name", SEQUENCE_ONLY)
def test_sequence_classification_fields_are_refused_on_the_other_paths(tmp_path, name):
    assert {"text_column", "text_pair_column", "label_column"} == set(SEQUENCE_ONLY)
    value = another_value(fields_of_path(SequenceClassificationRLConfig)[name])
    args = TokenLevelRLConfig(output_dir=str(tmp_path), **COMMON, **{name: value})
    pattern = rf"^{name}=.* is a setting of SequenceClassificationRLTrainer .*"
    with pytest.raises(ValueError, match=pattern + "TokenClassificationRLTrainer"):
        TokenLevelRLTrainer(model=tiny_bert(), reward_funcs=[TokenAccuracyReward()], args=args,
                            train_dataset=synthetic_dataset(8), processing_class=word_tokenizer())  # fmt: skip
    with pytest.raises(ValueError, match=pattern + "GenerationRLTrainer"):
        TokenLevelRLTrainer(model=tiny_llama(), reward_funcs=[lambda completions, **kw: [0.0] * len(completions)],
                            args=args, train_dataset=prompt_dataset(4), processing_class=lm_tokenizer())  # fmt: skip


def test_path_rules_run_and_the_path_config_has_only_its_fields(tmp_path):
    with pytest.raises(ValueError, match="baseline must be one of"):
        entry_point(TokenLevelRLConfig(output_dir=str(tmp_path), baseline="median", **COMMON))
    with pytest.raises(TypeError, match="label_all_tokens"):
        SequenceClassificationRLConfig(output_dir=str(tmp_path), label_all_tokens=True)
    with pytest.raises(ValueError, match="leave_one_out' needs num_samples >= 2"):
        SequenceClassificationRLConfig(output_dir=str(tmp_path), baseline="leave_one_out", num_samples=1)


def test_an_unknown_label_is_refused_with_its_record(tmp_path):
    args = SequenceClassificationRLConfig(output_dir=str(tmp_path), **COMMON)
    rows = {"id": ["a1", "a2", "a3"], "sentence": ["w1 w12", "w2", "w3 w21"], "label": ["green", "red", "gamma"]}
    with pytest.raises(ValueError, match=r"row 2 \(id 'a3'\): unknown label 'gamma' in column 'label'"):
        entry_point(args, datasets.Dataset.from_dict(rows), label_list=LABELS)
    with pytest.raises(ValueError, match=r"row 1: unknown label 7"):
        entry_point(args, datasets.Dataset.from_dict({"sentence": ["w1", "w2"], "label": [0, 7]}), label_list=LABELS)
    with pytest.raises(ValueError, match=r"ClassLabel names \['red', 'green', 'blue'\] differ"):
        entry_point(args, label_list=["green", "red", "blue"])
    with pytest.raises(ValueError, match="no text column 'text'"):
        entry_point(SequenceClassificationRLConfig(output_dir=str(tmp_path), text_column="text", **COMMON))


# ---------------------------------------------------------------------- saved models
@pytest.mark.parametrize("method", ["full", "lora_merged"])
def test_saved_model_gives_the_trainers_predictions_in_the_pipeline(tmp_path, method, one_thread):
    from peft import LoraConfig

    lora = LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["query", "value"])
    trainer = make_trainer(tmp_path / "run", max_steps=4, merge_adapters=method == "lora_merged",
                           peft_config=lora if method == "lora_merged" else None)  # fmt: skip
    trainer.train()
    perturb(trainer.model, scale=0.5)  # trained weights of some size (LoRA B starts at 0): the merge must carry them
    test = synthetic_texts(24, seed=9)
    logits = torch.as_tensor(trainer.predict(trainer.prepare_dataset(test)).predictions)
    probabilities, predicted = logits.softmax(-1), logits.argmax(-1)
    trainer.save_model(str(tmp_path / "saved"))
    if method == "lora_merged":
        assert (tmp_path / "saved" / "adapter" / "adapter_model.safetensors").exists()
        assert not (tmp_path / "saved" / "adapter_config.json").exists()  # a plain model at the top
    classifier = pipeline("text-classification", model=str(tmp_path / "saved"), device="cpu")
    outputs = classifier(list(test["sentence"]), top_k=None)  # every label's score, best first
    assert [o[0]["label"] for o in outputs] == [LABELS[i] for i in predicted]
    scores = torch.tensor([[next(s["score"] for s in o if s["label"] == name) for name in LABELS] for o in outputs])
    torch.testing.assert_close(scores, probabilities, rtol=1e-4, atol=1e-5)  # the same model, not just the argmax
    card = (tmp_path / "saved" / "README.md").read_text()
    assert "CorrectLabelReward" in card
