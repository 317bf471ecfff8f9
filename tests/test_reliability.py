"""Nothing silent: non-finite rewards, weights, losses and gradients stop training with a named error; online
learning after `train()` still learns; online checkpoints never unpickle code. Each test is a reproduction of a
reported failure."""

from __future__ import annotations

import math
import os
import pickle

import pytest
import torch

from test_trainer import make_trainer
from tiny import SYNTH_LABELS, synthetic_dataset, tiny_bert, word_tokenizer
from tiny_lm import lm_tokenizer, prompt_dataset, tiny_llama
from trl_tokenlevel import GenerationRLConfig, TokenClassificationRLConfig, TokenLevelRLTrainer
from trl_tokenlevel.online.loop import ONLINE_CHECKPOINT_PREFIX, OPTIMIZER_NAME
from trl_tokenlevel.rewards import TokenAccuracyReward


def constant_token_reward(value):
    def reward(sampled_labels, gold_labels, word_mask, label_names, **kwargs):
        out = torch.zeros(sampled_labels.shape)
        out[..., 1] = value  # position 1 is the first word of every row
        return out

    reward.__name__ = "constant_token_reward"
    return reward


def constant_completion_reward(value):
    def reward(prompts, completions, completion_ids, **kwargs):
        return [[value] * len(ids) for ids in completion_ids]

    reward.__name__ = "constant_completion_reward"
    return reward


def generation_trainer(tmp_path, reward, **overrides):
    values = dict(output_dir=str(tmp_path), per_device_train_batch_size=4, num_samples=2, max_new_tokens=4,
                  max_steps=2, report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0)
    values.update(overrides)
    return TokenLevelRLTrainer(model=tiny_llama(), reward_funcs=[reward], args=GenerationRLConfig(**values),
                               train_dataset=prompt_dataset(16), processing_class=lm_tokenizer())


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_non_finite_token_reward_names_the_reward_sentence_and_position(tmp_path, value):
    trainer = make_trainer(tmp_path, reward_funcs=[constant_token_reward(value)], max_steps=1)
    with pytest.raises(ValueError, match=r"'constant_token_reward' returned .*at sample 0, sentence 0, position 1"):
        trainer.train()
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_a_non_finite_completion_reward_stops_the_generation_path(tmp_path):
    trainer = generation_trainer(tmp_path, constant_completion_reward(math.inf))
    with pytest.raises(ValueError, match="'constant_completion_reward' returned inf for completion 0 at token 0"):
        trainer.train()


def test_non_finite_reward_weights_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"reward_weights\[0\] is nan"):
        TokenClassificationRLConfig(output_dir=str(tmp_path), reward_weights=[float("nan")])
    with pytest.raises(ValueError, match="The weight of reward 'TokenAccuracyReward' is inf"):
        TokenLevelRLTrainer(model=tiny_bert(), reward_funcs=[TokenAccuracyReward()], reward_weights=[math.inf],
                            args=TokenClassificationRLConfig(output_dir=str(tmp_path)), train_dataset=synthetic_dataset(4),
                            processing_class=word_tokenizer())


def test_a_non_finite_loss_stops_token_classification_before_the_update(tmp_path):
    trainer = make_trainer(tmp_path, reward_funcs=[constant_token_reward(3e38)], ce_coef=0.0, max_steps=2,
                           baseline="none", num_samples=4)
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(FloatingPointError, match="at optimizer step 1: training stopped before this update"):
        trainer.train()
    for name, value in trainer.model.state_dict().items():  # the overflowing update never reached the weights
        assert torch.equal(value, start[name]), name
    assert not os.path.exists(tmp_path / "model.safetensors")


def test_a_non_finite_loss_stops_generation_before_the_update(tmp_path):
    trainer = generation_trainer(tmp_path, constant_completion_reward(3e38))
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(FloatingPointError, match="training stopped before"):
        trainer.train()
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, start[name]), name


def test_learn_online_after_train_still_updates_the_parameters(tmp_path):
    """train() with a linear schedule ends at learning rate 0; learn_online must not reuse that rate."""
    trainer = make_trainer(tmp_path, max_steps=3, lr_scheduler_type="linear", online_batch_size=8, logging_steps=1)
    trainer.train()
    assert trainer.optimizer.param_groups[0]["lr"] == 0.0
    before = {k: v.clone() for k, v in trainer.model.named_parameters()}
    trainer.learn_online([dict(row) for row in synthetic_dataset(16, seed=4)])
    changed = [k for k, v in trainer.model.named_parameters() if not torch.equal(v, before[k])]
    assert "classifier.weight" in changed and len(changed) > 10
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(trainer.args.learning_rate)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch exploited_by_pickle",))


def test_a_crafted_pickle_in_an_online_checkpoint_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trainer = make_trainer(tmp_path / "run", online_batch_size=4, online_save_steps=1, logging_steps=1)
    trainer.learn_online([dict(row) for row in synthetic_dataset(4, seed=4)])
    folder = tmp_path / "run" / f"{ONLINE_CHECKPOINT_PREFIX}-1"
    with open(folder / OPTIMIZER_NAME, "wb") as handle:
        pickle.dump({"optimizer": _Exploit()}, handle)
    fresh = make_trainer(tmp_path / "run", online_batch_size=4)
    with pytest.raises(pickle.UnpicklingError):
        fresh.learn_online([], resume_from_checkpoint=str(folder))
    assert not (tmp_path / "exploited_by_pickle").exists()


def test_an_empty_dataset_is_refused_by_name_before_tokenizing(tmp_path):
    import datasets

    empty_raw = datasets.Dataset.from_dict({"tokens": [], "ner_tags": []})
    args = TokenClassificationRLConfig(output_dir=str(tmp_path / "tok"), use_cpu=True, report_to="none")
    with pytest.raises(ValueError, match=r"train_dataset has no rows\. Fix"):
        TokenLevelRLTrainer(tiny_bert(), args=args, train_dataset=empty_raw, processing_class=word_tokenizer(),
                            label_list=SYNTH_LABELS)  # fmt: skip
    with pytest.raises(ValueError, match=r"eval_dataset\['dev'\] has no rows"):
        TokenLevelRLTrainer(tiny_bert(), args=args, train_dataset=synthetic_dataset(4), processing_class=word_tokenizer(),
                            eval_dataset={"dev": empty_raw}, label_list=SYNTH_LABELS)  # fmt: skip
    args = GenerationRLConfig(output_dir=str(tmp_path / "gen"), use_cpu=True, report_to="none")
    with pytest.raises(ValueError, match=r"train_dataset has no rows"):
        TokenLevelRLTrainer(tiny_llama(), reward_funcs=[constant_completion_reward(1.0)], args=args,
                            train_dataset=prompt_dataset(4).select([]), processing_class=lm_tokenizer())
