"""One config per algorithm path: every field is used by the trainer it is given to, or refused with its name.

`TokenLevelRLConfig` (the entry point's config) carries every path's fields; the trainer that takes it refuses the
fields of the other path. The path configs do not have the other path's fields at all.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tiny import synthetic_dataset, tiny_bert, word_tokenizer
from tiny_lm import lm_tokenizer, prompt_dataset, tiny_llama
from trl_tokenlevel import (
    GenerationRLConfig,
    GenerationRLTrainer,
    TokenClassificationRLConfig,
    TokenClassificationRLTrainer,
    TokenLevelRLConfig,
    TokenLevelRLTrainer,
)
from trl_tokenlevel.base_config import TokenLevelRLBaseConfig, field_default, fields_of_path
from trl_tokenlevel.rewards import TokenAccuracyReward


COMMON = dict(report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0)
TOKEN_ONLY = sorted(set(fields_of_path(TokenClassificationRLConfig)) - set(fields_of_path(GenerationRLConfig)))
GENERATION_ONLY = sorted(set(fields_of_path(GenerationRLConfig)) - set(fields_of_path(TokenClassificationRLConfig)))


def pays_for_w7(prompts, completions, completion_ids, **kwargs):
    return [[1.0] * len(ids) for ids in completion_ids]


def another_value(f: dataclasses.Field):
    """A value different from the field's default (validity is not needed: the refusal comes first)."""
    default = field_default(f)
    if isinstance(default, bool):
        return not default
    if isinstance(default, (int, float)):
        return default + 1
    if isinstance(default, str):
        return default + "_other"
    return 0.5  # an optional field left at None


def token_trainer(tmp_path, args):
    return TokenLevelRLTrainer(
        model=tiny_bert(), reward_funcs=[TokenAccuracyReward()], args=args, train_dataset=synthetic_dataset(16),
        processing_class=word_tokenizer(),
    )


def generation_trainer(tmp_path, args, model=None):
    return TokenLevelRLTrainer(
        model=model if model is not None else tiny_llama(), reward_funcs=[pays_for_w7], args=args,
        train_dataset=prompt_dataset(8), processing_class=lm_tokenizer(),
    )


def test_the_paths_split_the_fields():
    assert {"baseline", "ce_coef", "rl_start_step", "rl_start_epoch", "precompute_reference_logprobs",
            "reset_reference_at_rl_start", "ce_coef_schedule", "max_length", "eval_stride",
            "label_all_tokens", "ce_weight_column"} == set(TOKEN_ONLY)
    assert {"prompt_column", "max_new_tokens", "advantage_estimator", "kl_placement", "num_ppo_epochs", "cliprange",
            "vf_coef", "gamma", "lam", "top_p", "top_k", "sequence_reward_placement", "group_baseline",
            "max_prompt_length", "cliprange_value", "generation_kwargs"} == set(GENERATION_ONLY)
    shared = {f.name for f in dataclasses.fields(TokenLevelRLBaseConfig)}
    assert {"num_samples", "rl_coef", "kl_coef", "model_init_kwargs", "reward_weights"} <= shared
    assert not {"load_in_8bit", "load_in_4bit"} & shared  # TRL's ModelConfig holds them (TokenLevelModelConfig)
    with pytest.raises(TypeError, match="prompt_column"):
        TokenClassificationRLConfig(output_dir="x", prompt_column="text")
    with pytest.raises(TypeError, match="rl_start_step"):
        GenerationRLConfig(output_dir="x", rl_start_step=3)


@pytest.mark.parametrize("name", TOKEN_ONLY)
def test_token_classification_fields_are_refused_on_a_causal_lm(tmp_path, name):
    f = fields_of_path(TokenClassificationRLConfig)[name]
    args = TokenLevelRLConfig(output_dir=str(tmp_path), **COMMON, **{name: another_value(f)})
    with pytest.raises(ValueError, match=rf"^{name}=.* is a setting of TokenClassificationRLTrainer .*GenerationRLTrainer"):
        generation_trainer(tmp_path, args)


@pytest.mark.parametrize("name", GENERATION_ONLY)
def test_generation_fields_are_refused_on_a_token_classifier(tmp_path, name):
    f = fields_of_path(GenerationRLConfig)[name]
    args = TokenLevelRLConfig(output_dir=str(tmp_path), **COMMON, **{name: another_value(f)})
    with pytest.raises(ValueError, match=rf"^{name}=.* is a setting of GenerationRLTrainer .*TokenClassificationRLTrainer"):
        token_trainer(tmp_path, args)


def test_one_sample_with_the_greedy_baseline_is_a_valid_token_classification_setting(tmp_path):
    args = TokenLevelRLConfig(output_dir=str(tmp_path), num_samples=1, baseline="greedy", max_steps=1, **COMMON)
    trainer = token_trainer(tmp_path, args)
    trainer.train()
    assert trainer.state.global_step == 1
    # ... while the generation path's own rule still applies on a causal LM
    with pytest.raises(ValueError, match="advantage_estimator='leave_one_out' needs num_samples >= 2"):
        generation_trainer(tmp_path, TokenLevelRLConfig(output_dir=str(tmp_path), num_samples=1, **COMMON))


def test_the_path_rules_run_when_the_path_is_known(tmp_path):
    args = TokenLevelRLConfig(output_dir=str(tmp_path), baseline="median", **COMMON)  # constructs: path unknown
    with pytest.raises(ValueError, match="baseline must be one of"):
        token_trainer(tmp_path, args)
    with pytest.raises(ValueError, match="baseline must be one of"):
        TokenClassificationRLConfig(output_dir=str(tmp_path), baseline="median")


def test_the_entry_point_returns_the_trainer_of_the_model_kind(tmp_path):
    token = token_trainer(tmp_path, TokenClassificationRLConfig(output_dir=str(tmp_path), **COMMON))
    generation = generation_trainer(tmp_path, GenerationRLConfig(output_dir=str(tmp_path), **COMMON))
    assert type(token) is TokenClassificationRLTrainer and type(generation) is GenerationRLTrainer
    assert isinstance(token, TokenLevelRLTrainer) and isinstance(generation, TokenLevelRLTrainer)
    with pytest.raises(TypeError, match="TokenClassificationRLTrainer takes a TokenClassificationRLConfig"):
        token_trainer(tmp_path, GenerationRLConfig(output_dir=str(tmp_path), **COMMON))


def test_8bit_model_init_kwargs_are_honoured_for_a_causal_lm_by_name_and_refused_for_a_loaded_one(tmp_path):
    pytest.importorskip("bitsandbytes")
    if "AVX512" not in torch.backends.cpu.get_cpu_capability():
        pytest.skip("bitsandbytes' CPU kernels need AVX512")
    import bitsandbytes as bnb
    from peft import LoraConfig

    folder = tmp_path / "tiny-llama"
    tiny_llama().save_pretrained(folder)
    lm_tokenizer().save_pretrained(folder)
    args = GenerationRLConfig(output_dir=str(tmp_path / "out"), model_init_kwargs={"load_in_8bit": True}, max_steps=1,
                              num_samples=2, max_new_tokens=3, per_device_train_batch_size=2, **COMMON)
    trainer = TokenLevelRLTrainer(
        model=str(folder), reward_funcs=[pays_for_w7], args=args, train_dataset=prompt_dataset(4),
        peft_config=LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj", "v_proj"]),
    )
    layers = [m for m in trainer.model.modules() if isinstance(m, bnb.nn.Linear8bitLt)]
    assert len(layers) >= 4  # every projection of the 2 layers is int8; lm_head stays full precision
    assert not isinstance(trainer.model.get_base_model().lm_head, bnb.nn.Linear8bitLt)
    trainer.train()
    assert trainer.state.global_step == 1
    with pytest.raises(ValueError, match="model_init_kwargs is set but the model was passed already loaded"):
        generation_trainer(tmp_path, GenerationRLConfig(output_dir=str(tmp_path), model_init_kwargs={"load_in_8bit": True},
                                                        **COMMON))
