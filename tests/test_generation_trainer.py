"""Tier 2: TokenLevelRLTrainer on a tiny random Llama built from a config (generation path, no downloads)."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from tiny_lm import lm_tokenizer, prompt_dataset, tiny_llama
from trl_tokenlevel import GenerationRLConfig, TokenLevelRLConfig, TokenLevelRLTrainer
from trl_tokenlevel.generation.rollout import policy_forward, sample_completions, token_logprobs, tokenize_prompts
from trl_tokenlevel.generation.value_head import VALUE_HEAD_FILE, ValueHead


TOKENIZER = lm_tokenizer()
TARGET = TOKENIZER.convert_tokens_to_ids("w7")


def pays_for_w7(prompts, completions, completion_ids, **kwargs):
    """Dense: 1 for every sampled w7."""
    return [[1.0 if t == TARGET else 0.0 for t in ids] for ids in completion_ids]


def counts_w7(prompts, completions, completion_ids, **kwargs):
    """Sequence: the number of w7 in the completion."""
    return [float(sum(t == TARGET for t in ids)) for ids in completion_ids]


def make_trainer(tmp_path, reward_funcs=(pays_for_w7,), model=None, train=None, **overrides):
    values = dict(
        output_dir=str(tmp_path), per_device_train_batch_size=8, num_samples=4, max_new_tokens=6, learning_rate=1e-2,
        logging_steps=5, report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0, max_steps=20,
    )
    peft_config = overrides.pop("peft_config", None)
    values.update(overrides)
    return TokenLevelRLTrainer(
        model=model or tiny_llama(), reward_funcs=list(reward_funcs), args=TokenLevelRLConfig(**values),
        train_dataset=train if train is not None else prompt_dataset(160), processing_class=TOKENIZER,
        peft_config=peft_config,
    )


def target_frequency(model, seed=123, prompts=64):
    """Share of w7 among the sampled completion tokens (temperature 1, fixed seed)."""
    torch.manual_seed(seed)
    ids, mask = tokenize_prompts(prompt_dataset(prompts, seed=9)["prompt"], TOKENIZER, None, "cpu")
    rollout = sample_completions(
        model, ids, mask, 2, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=6, eos_token_ids=[3], pad_token_id=0
    )
    m = rollout.completion_mask.bool()
    return float((rollout.completion_ids[m] == TARGET).float().mean())


def test_dense_reward_raises_the_frequency_of_the_paid_token(tmp_path):
    trainer = make_trainer(tmp_path)
    before = target_frequency(trainer.model)
    start = {k: v.clone() for k, v in trainer.model.named_parameters()}
    trainer.train()
    after = target_frequency(trainer.model)
    assert before < 0.1 and after > 0.5, (before, after)
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert logs[-1]["reward"] > logs[0]["reward"] + 1.0
    for key in ("rewards/pays_for_w7/mean", "approx_kl", "clip_fraction", "entropy", "completion_length", "advantages/std"):
        assert key in logs[-1], key
    changed = [k for k, v in trainer.model.named_parameters() if not torch.equal(v, start[k])]
    assert len(changed) > 10


def test_sequence_reward_with_chat_prompts_and_per_sequence_baseline_trains(tmp_path):
    trainer = make_trainer(
        tmp_path, reward_funcs=[counts_w7], train=prompt_dataset(160, chat=True), group_baseline="per_sequence",
        sequence_reward_placement="last",
    )
    before = target_frequency(trainer.model)
    trainer.train()
    assert target_frequency(trainer.model) > max(0.3, 5 * before)


def test_ppo_value_head_trains_value_loss_falls_and_saves(tmp_path):
    def constant_plus_w7(prompts, completions, completion_ids, **kwargs):
        return [[0.5 + (t == TARGET) for t in ids] for ids in completion_ids]

    trainer = make_trainer(
        tmp_path, reward_funcs=[constant_plus_w7], advantage_estimator="gae", num_ppo_epochs=2, vf_coef=1.0,
        learning_rate=5e-3, max_steps=24, logging_steps=4,
    )
    before = target_frequency(trainer.model)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "value_loss" in h]
    assert logs[-1]["value_loss"] < 0.5 * logs[0]["value_loss"], [h["value_loss"] for h in logs]
    assert "explained_variance" in logs[-1]
    assert target_frequency(trainer.model) > before
    assert any(h["clip_fraction"] > 0 for h in logs)  # the second epoch of a rollout is off-policy

    trainer.save_model(str(tmp_path / "saved"))
    reloaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "saved"))
    assert not hasattr(reloaded, "value_head") and (tmp_path / "saved" / VALUE_HEAD_FILE).is_file()
    head = ValueHead.from_pretrained(str(tmp_path / "saved"))
    assert torch.equal(head.summary.weight, trainer.model.value_head.summary.weight.cpu())
    ids = torch.tensor([[2, 5, 6, 7]])
    assert torch.allclose(reloaded(ids).logits, trainer.model(ids).logits, atol=1e-6)
    resumed = make_trainer(tmp_path / "again", model=reloaded, advantage_estimator="gae")  # picks the saved head up
    assert torch.equal(resumed.model.value_head.summary.weight, head.summary.weight)


@pytest.mark.parametrize("use_peft", [False, True])
def test_kl_is_zero_at_step_zero(tmp_path, use_peft):
    peft_config = None
    if use_peft:
        from peft import LoraConfig

        peft_config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = make_trainer(
        tmp_path, kl_coef=0.1, max_steps=3, logging_steps=1, peft_config=peft_config, kl_placement="loss",
        learning_rate=5e-2,
    )
    assert (trainer.ref_model is None) == use_peft  # PEFT: adapters disabled, no copy
    trainer.train()
    kls = [h["kl"] for h in trainer.state.log_history if "kl" in h]
    assert abs(kls[0]) < 1e-5 and abs(trainer.state.log_history[0]["kl_k3"]) < 1e-5, kls
    assert kls[-1] > 1e-4, kls  # and it moves once the policy does


def test_reward_of_the_wrong_length_fails_with_a_clear_error(tmp_path):
    def one_too_many(prompts, completions, completion_ids, **kwargs):
        return [[0.0] * (len(ids) + 1) for ids in completion_ids]

    trainer = make_trainer(tmp_path, reward_funcs=[one_too_many], max_steps=1)
    with pytest.raises(ValueError, match=r"Reward 'one_too_many' returned \d+ values for completion 0, which has \d+ tokens"):
        trainer.train()


def _gradient(tmp_path, reward, **overrides):
    trainer = make_trainer(tmp_path, reward_funcs=[reward], **overrides)
    rows = [trainer.train_dataset[i] for i in range(4)]
    torch.manual_seed(7)
    batch = trainer.make_rollout(rows)[0]
    trainer.model.zero_grad()
    trainer.compute_loss(trainer.model, batch).backward()
    return torch.cat([p.grad.flatten() for p in trainer.model.parameters() if p.grad is not None]), batch


def test_dense_and_spread_sequence_rewards_give_the_same_gradient(tmp_path):
    def dense(prompts, completions, completion_ids, **kwargs):  # 0.3 per w7 token... encoded per token
        return [[0.25 * len(ids) % 1.0 + 0.1 * i] * len(ids) for i, ids in enumerate(completion_ids)]

    def sequence(prompts, completions, completion_ids, **kwargs):  # the same per-token values, as totals
        return [(0.25 * len(ids) % 1.0 + 0.1 * i) * len(ids) for i, ids in enumerate(completion_ids)]

    grad_dense, batch_dense = _gradient(tmp_path / "d", dense)
    grad_seq, batch_seq = _gradient(tmp_path / "s", sequence, sequence_reward_placement="spread")
    assert torch.equal(batch_dense["completion_ids"], batch_seq["completion_ids"])
    assert grad_dense.abs().sum() > 0
    torch.testing.assert_close(grad_dense, grad_seq, rtol=1e-4, atol=1e-7)


def test_rollout_logprobs_match_the_training_forward_at_the_sampling_temperature():
    model = tiny_llama()
    ids, mask = tokenize_prompts(["w1 w2 w3", "w4"], TOKENIZER, None, "cpu")  # left padding
    torch.manual_seed(0)
    rollout = sample_completions(
        model, ids, mask, 3, temperature=0.7, top_p=1.0, top_k=0, max_new_tokens=5, eos_token_ids=[3], pad_token_id=0
    )
    with torch.no_grad():
        logits, _ = policy_forward(model, vars(rollout))
    forward = token_logprobs(logits, rollout.completion_ids, 0.7) * rollout.completion_mask
    torch.testing.assert_close(forward, rollout.old_logprobs, atol=1e-5, rtol=1e-5)
    wrong_temperature = token_logprobs(logits, rollout.completion_ids, 1.0) * rollout.completion_mask
    assert (wrong_temperature - rollout.old_logprobs).abs().max() > 1e-2


def test_gradient_accumulation_gives_the_same_update(tmp_path):
    """One rollout of 8 prompts trained as 1 micro-batch of 8 or 2 of 4: same loss normalisation, same SGD step."""
    params = []
    for batch_size, accumulation in ((8, 1), (4, 2)):
        trainer = make_trainer(
            tmp_path / f"{batch_size}", train=prompt_dataset(8), per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=accumulation, max_steps=1, optim="sgd", learning_rate=1.0,
            lr_scheduler_type="constant", logging_steps=1,
        )
        trainer.train()
        params.append(torch.cat([p.detach().flatten() for p in trainer.model.parameters()]))
    assert not torch.equal(params[0], torch.cat([p.flatten() for p in tiny_llama().parameters()]))
    torch.testing.assert_close(params[0], params[1], rtol=1e-4, atol=1e-6)


def test_resuming_a_gae_run_restores_the_value_head_and_continues_like_one_run(tmp_path):
    def constant_plus_w7(prompts, completions, completion_ids, **kwargs):
        return [[0.5 + (t == TARGET) for t in ids] for ids in completion_ids]

    common = dict(reward_funcs=[constant_plus_w7], advantage_estimator="gae", vf_coef=1.0, learning_rate=5e-3,
                  max_steps=4, save_strategy="steps", save_steps=2, train=prompt_dataset(32))
    full = make_trainer(tmp_path / "full", model=tiny_llama(), **common)
    full.train()
    saved = ValueHead.from_pretrained(str(tmp_path / "full" / "checkpoint-2"))
    assert saved.summary.weight.abs().sum() > 0  # the head trained before the checkpoint

    resumed = make_trainer(tmp_path / "resumed", model=tiny_llama(), **common)  # a fresh, zero value head
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-2"))
    assert resumed.state.global_step == 4
    # without the restore the resumed head starts from zeros and ends elsewhere
    torch.testing.assert_close(resumed.model.value_head.summary.weight, full.model.value_head.summary.weight)
    for name, value in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, msg=name)


def test_resuming_a_gae_run_from_a_checkpoint_without_a_value_head_says_so(tmp_path):
    plain = make_trainer(tmp_path / "plain", max_steps=2, save_strategy="steps", save_steps=2, train=prompt_dataset(16))
    plain.train()
    gae = make_trainer(tmp_path / "gae", advantage_estimator="gae", max_steps=4, train=prompt_dataset(16))
    checkpoint = tmp_path / "plain" / "checkpoint-2"
    with pytest.raises(ValueError, match="written by another run.*advantage_estimator: checkpoint 'leave_one_out'"):
        gae.train(resume_from_checkpoint=str(checkpoint))
    (checkpoint / "token_level_rl_run.json").unlink()  # a checkpoint from before run files: the value head is named
    with pytest.raises(FileNotFoundError, match="has no value_head.safetensors, but this run trains a value head"):
        gae.train(resume_from_checkpoint=str(checkpoint))


def test_generation_kwargs_reach_the_rollout_and_keys_the_trainer_sets_are_refused(tmp_path):
    """min_new_tokens through generation_kwargs gives equal lengths on a model that prefers EOS; the log-probs are the
    plain tempered policy's; keys the trainer owns and misspelt keys are refused."""
    model = tiny_llama()
    with torch.no_grad():
        model.lm_head.weight[3] += 5.0 * model.model.norm.weight  # EOS (id 3) very likely at every step
    lengths = {}
    for name, kwargs in (("plain", None), ("fixed", '{"min_new_tokens": 6}')):  # a JSON string, as from the CLI
        trainer = make_trainer(tmp_path / name, model=model, generation_kwargs=kwargs, max_steps=1)
        torch.manual_seed(0)
        rollout, _, _ = trainer.sample_and_score(list(prompt_dataset(4)))
        lengths[name] = rollout.completion_mask.sum(1).tolist()
        with torch.no_grad():
            logits, _ = policy_forward(model, vars(rollout))
        forward = token_logprobs(logits, rollout.completion_ids, 1.0) * rollout.completion_mask
        torch.testing.assert_close(forward, rollout.old_logprobs, atol=1e-5, rtol=1e-4)
    assert sum(n < 6 for n in lengths["plain"]) >= 4 and lengths["fixed"] == [6] * 16  # EOS stops many, then none
    with pytest.raises(ValueError, match=r"\['max_new_tokens'\].*use the max_new_tokens field"):
        GenerationRLConfig(output_dir=str(tmp_path), generation_kwargs={"max_new_tokens": 9})
    with pytest.raises(ValueError, match=r"\['min_new_token'\] are not GenerationConfig arguments"):
        GenerationRLConfig(output_dir=str(tmp_path), generation_kwargs={"min_new_token": 6})


def test_adapters_the_trainer_creates_are_the_same_for_the_same_seed(tmp_path):
    """LoRA's A matrices are drawn when the trainer wraps the model: seeded by args.seed, not by the process's state."""
    from peft import LoraConfig

    weights = []
    for burn in (0, 5):
        model = tiny_llama()  # (seeds itself)
        torch.rand(burn)  # the process's RNG left in another state
        trainer = make_trainer(tmp_path / str(burn), model=model, max_steps=1,
                               peft_config=LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj"]))
        weights.append({k: v.detach().clone() for k, v in trainer.model.named_parameters() if "lora_A" in k})
    assert weights[0] and all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
