"""Tier 2: TokenLevelRLTrainer on a tiny random BERT built from a config (no downloads)."""


import pytest
import torch

import trl_tokenlevel.token_classification.trainer as trainer_module
from tiny import SYNTH_LABELS, assert_same_update, fixed_gumbel, perturb, synthetic_dataset, tiny_bert, word_tokenizer
from trl_tokenlevel import TokenClassificationRLConfig, TokenLevelRLTrainer
from trl_tokenlevel.rewards import EntitySpanReward, TokenAccuracyReward


def token_accuracy(prediction):
    preds, labels = prediction
    mask = labels != -100
    return {"token_accuracy": float((preds[mask] == labels[mask]).mean())}


def argmax(logits, labels):
    return logits.argmax(-1)


def make_config(tmp_path, **overrides):
    values = dict(
        output_dir=str(tmp_path), per_device_train_batch_size=32, learning_rate=3e-3, logging_steps=4,
        report_to="none", use_cpu=True, save_strategy="no", eval_strategy="no", disable_tqdm=True, seed=0,
    )
    values.update(overrides)
    return TokenClassificationRLConfig(**values)


def make_trainer(tmp_path, model=None, train=None, **overrides):
    rewards = overrides.pop("reward_funcs", [TokenAccuracyReward()])
    peft_config = overrides.pop("peft_config", None)
    return TokenLevelRLTrainer(
        model=model or tiny_bert(), reward_funcs=rewards, args=make_config(tmp_path, **overrides),
        train_dataset=train if train is not None else synthetic_dataset(512, seed=0),
        eval_dataset=synthetic_dataset(128, seed=1), processing_class=word_tokenizer(),
        compute_metrics=token_accuracy, preprocess_logits_for_metrics=argmax, peft_config=peft_config,
    )


def test_learns_a_tagging_task_from_rewards_alone(tmp_path):
    trainer = make_trainer(tmp_path, ce_coef=0.0, num_train_epochs=4)
    before = trainer.evaluate()["eval_token_accuracy"]
    start = {k: v.clone() for k, v in trainer.model.named_parameters()}
    trainer.train()
    after = trainer.evaluate()["eval_token_accuracy"]
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert logs[-1]["reward"] > logs[0]["reward"] + 0.5, (logs[0]["reward"], logs[-1]["reward"])
    # chance is 1/5 labels and the majority label (O) covers ~52% of tokens
    assert before < 0.5 and after > 0.9, (before, after)
    assert logs[-1]["sample_greedy_agreement"] > logs[0]["sample_greedy_agreement"]
    changed = [k for k, v in trainer.model.named_parameters() if not torch.equal(v, start[k])]
    assert "classifier.weight" in changed and len(changed) > 10
    for key in ("rewards/TokenAccuracyReward/mean", "reward_greedy", "advantages/mean", "advantages/std",
                "entropy", "ce_loss", "sample_greedy_agreement"):
        assert key in logs[-1]


def _deterministic_samples(logits, num_samples, temperature=1.0):
    """Gumbel-max sampling with noise fixed per (sample, position, label): identical however the batch is split."""
    noise = fixed_gumbel(num_samples, 1, 64, logits.shape[-1])
    return (logits.detach().unsqueeze(0) / temperature + noise[:, :, : logits.shape[1]]).argmax(-1)


@pytest.mark.parametrize("kl_coef", [0.0, 0.1])
def test_gradient_accumulation_invariance(tmp_path, monkeypatch, kl_coef):
    """1 micro-batch of 8 and 2 micro-batches of 4 give the same loss and the same SGD update. For the KL arm the
    policy is first moved away from its frozen reference, so the KL term has a gradient to get wrong."""
    monkeypatch.setattr(trainer_module, "sample_actions", _deterministic_samples)
    train = synthetic_dataset(8, seed=3)
    results = []
    for batch_size, accumulation in ((8, 1), (4, 2)):
        trainer = make_trainer(
            tmp_path / f"{batch_size}x{accumulation}", train=train, reward_funcs=[TokenAccuracyReward(), EntitySpanReward()],
            per_device_train_batch_size=batch_size, gradient_accumulation_steps=accumulation, max_steps=1,
            optim="sgd", learning_rate=1.0, lr_scheduler_type="constant", disable_dropout=True, logging_steps=1,
            kl_coef=kl_coef, entropy_coef=0.01, max_grad_norm=0.0, num_samples=3,
        )
        if kl_coef:
            perturb(trainer.model)
        trainer.train()
        results.append((trainer.state.log_history[0], {k: v.detach().clone() for k, v in trainer.model.named_parameters()}))
    assert_same_update(results, tiny_bert().state_dict(), kl_coef)


def test_kl_to_frozen_reference_is_zero_at_start_and_grows(tmp_path):
    trainer = make_trainer(tmp_path, kl_coef=0.5, disable_dropout=True, max_steps=8, logging_steps=1)
    assert trainer.ref_model is not None
    assert not any(p.requires_grad for p in trainer.ref_model.parameters())
    reference_before = {k: v.clone() for k, v in trainer.ref_model.state_dict().items()}
    trainer.train()
    kls = [h["kl"] for h in trainer.state.log_history if "kl" in h]
    assert kls[0] == pytest.approx(0.0, abs=1e-6) and kls[-1] > 1e-4
    for k, v in trainer.ref_model.state_dict().items():
        assert torch.equal(v, reference_before[k]), k


def test_lora_reference_is_the_base_with_adapters_disabled(tmp_path):
    from peft import LoraConfig

    lora = LoraConfig(task_type="TOKEN_CLS", r=4, lora_alpha=8, target_modules=["query", "value"])
    trainer = make_trainer(tmp_path, kl_coef=0.5, disable_dropout=True, max_steps=6, logging_steps=1, peft_config=lora)
    assert trainer.ref_model is None  # no second copy under PEFT
    trainer.train()
    kls = [h["kl"] for h in trainer.state.log_history if "kl" in h]
    assert kls[0] == pytest.approx(0.0, abs=1e-6) and kls[-1] > 0.0
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)


def test_ce_then_rl_schedule_and_reference_reset(tmp_path):
    trainer = make_trainer(
        tmp_path, rl_start_step=4, max_steps=8, logging_steps=1, kl_coef=0.1, reset_reference_at_rl_start=True,
        disable_dropout=True,
    )
    trainer.train()
    logs = [h for h in trainer.state.log_history if "rl_active" in h]
    assert [h["rl_active"] for h in logs] == [0.0] * 4 + [1.0] * 4
    assert all("reward" not in h for h in logs[:4]) and all("reward" in h for h in logs[4:])
    # the reference became the warmed-up model: KL restarts from 0 when RL switches on
    assert logs[3]["kl"] > 1e-4 and logs[4]["kl"] == pytest.approx(0.0, abs=1e-6)


def test_prompt_tuning_logits_are_aligned_to_the_real_tokens(tmp_path):
    """PEFT prompt tuning prepends 5 virtual tokens, so the model returns (B, 5 + T, C) logits: the trainer must drop
    the first 5 positions (not keep the first T), in the loss and in the predictions."""
    from peft import PromptTuningConfig

    config = PromptTuningConfig(task_type="TOKEN_CLS", num_virtual_tokens=5)
    trainer = make_trainer(tmp_path, max_steps=2, peft_config=config, learning_rate=1e-2)
    trainer.train()
    model = trainer.model.eval()
    batch = trainer.data_collator([trainer.eval_dataset[i] for i in range(4)])
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
    with torch.no_grad():
        full = model(**inputs).logits  # (B, 5 + T, C)
        _, outputs = trainer.compute_loss(model, batch, return_outputs=True)
    assert full.shape[1] == batch["labels"].shape[1] + 5
    torch.testing.assert_close(outputs["logits"], full[:, 5:])  # by hand: the real tokens are the last T positions
    prediction = trainer.predict(trainer.eval_dataset.select(range(4)))
    mask = prediction.label_ids != -100
    expected = full[:, 5:].argmax(-1).numpy()
    assert (prediction.predictions[mask] == expected[mask]).all()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"baseline": "median"}, "baseline must be one of"),
        ({"baseline": "leave_one_out", "num_samples": 1}, "num_samples >= 2"),
        ({"rl_coef": 0.0, "ce_coef": 0.0}, "nothing would be learned"),
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"reset_reference_at_rl_start": True}, "needs kl_coef > 0"),
        ({"precompute_reference_logprobs": True}, "needs kl_coef > 0"),
        ({"precompute_reference_logprobs": True, "kl_coef": 0.1, "reset_reference_at_rl_start": True}, "use one of the two"),
    ],
)
def test_config_rejects_bad_combinations(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        make_config(tmp_path, **overrides)


def test_reward_weights_must_match_reward_funcs(tmp_path):
    with pytest.raises(ValueError, match="2 reward functions.*1 reward weights"):
        TokenLevelRLTrainer(
            tiny_bert(), reward_funcs=[TokenAccuracyReward(), EntitySpanReward()], reward_weights=[1.0],
            args=make_config(tmp_path), train_dataset=synthetic_dataset(8), processing_class=word_tokenizer(),
            label_list=SYNTH_LABELS,
        )


def test_raw_tokens_dataset_is_tokenized_and_extra_columns_reach_rewards(tmp_path):
    seen = {}

    def spy_reward(sampled_labels, gold_labels, word_mask, label_names, tokens=None, **kwargs):
        seen["tokens"] = tokens
        seen["step"] = kwargs["trainer_state"].global_step
        return torch.zeros(sampled_labels.shape)

    raw = synthetic_dataset(16, seed=4, tokenized=False)
    trainer = TokenLevelRLTrainer(
        tiny_bert(), reward_funcs=[spy_reward], args=make_config(tmp_path, max_steps=1, per_device_train_batch_size=4),
        train_dataset=raw, processing_class=word_tokenizer(),
    )
    assert trainer.label_list == SYNTH_LABELS  # read from the ClassLabel feature
    trainer.train()
    assert len(seen["tokens"]) == 4 and all(isinstance(t, list) and t[0].startswith("w") for t in seen["tokens"])
    assert seen["step"] == 0


@pytest.mark.parametrize("use_lora", [False, True])
def test_precomputed_reference_logprobs_match_the_live_reference(tmp_path, monkeypatch, use_lora):
    from peft import LoraConfig

    monkeypatch.setattr(trainer_module, "sample_actions", _deterministic_samples)
    runs = []
    for precompute in (False, True):
        lora = LoraConfig(task_type="TOKEN_CLS", r=4, target_modules=["query", "value"]) if use_lora else None
        trainer = make_trainer(
            tmp_path / str(precompute), train=synthetic_dataset(32, seed=5), kl_coef=0.5, disable_dropout=True,
            max_steps=4, logging_steps=1, per_device_train_batch_size=8, optim="sgd", learning_rate=0.5,
            precompute_reference_logprobs=precompute, peft_config=lora,
        )
        trainer.train()
        runs.append(([h["kl"] for h in trainer.state.log_history if "kl" in h], dict(trainer.model.named_parameters())))
        if precompute:
            assert trainer.reference_cache is not None and len(trainer.reference_cache.rows) == 32
            assert trainer.ref_model is None  # the frozen copy was freed after the cache was built
    (kl_live, params_live), (kl_cached, params_cached) = runs
    assert kl_live[-1] > 1e-4
    assert kl_cached == pytest.approx(kl_live, rel=1e-4, abs=1e-7)
    for name, value in params_live.items():
        torch.testing.assert_close(params_cached[name], value, rtol=1e-4, atol=1e-6)


def test_rl_start_epoch_switches_rl_on_halfway(tmp_path):
    # 64 sentences / batch 16 = 4 steps per epoch; RL from epoch 0.5 = from the third step on
    trainer = make_trainer(
        tmp_path, train=synthetic_dataset(64, seed=6), per_device_train_batch_size=16, num_train_epochs=1,
        rl_start_epoch=0.5, logging_steps=1,
    )
    trainer.train()
    assert [h["rl_active"] for h in trainer.state.log_history if "rl_active" in h] == [0.0, 0.0, 1.0, 1.0]
