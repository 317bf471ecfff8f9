"""TokenLevelModelConfig: TRL's ModelConfig with the library's PEFT presets, parsed beside every training config by
one TrlParser (the recipes' layout), and turned into from_pretrained arguments and PEFT configs."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from peft import IA3Config, LoraConfig
from trl import ModelConfig, TrlParser

from trl_tokenlevel import (
    GenerationRLConfig,
    QuestionAnsweringRLConfig,
    SequenceClassificationRLConfig,
    TokenClassificationRLConfig,
    TokenLevelModelConfig,
)


@pytest.mark.parametrize(
    "config_class", [TokenClassificationRLConfig, SequenceClassificationRLConfig, QuestionAnsweringRLConfig, GenerationRLConfig]
)
def test_one_trl_parser_takes_a_training_config_and_the_model_config_with_trls_flags(config_class, tmp_path):
    parser = TrlParser((config_class, TokenLevelModelConfig))  # a field in both would be a conflicting option
    training, model = parser.parse_args_into_dataclasses([
        "--output_dir", str(tmp_path), "--model_name_or_path", "my/model", "--use_peft", "true", "--lora_r", "4",
        "--lora_target_modules", "query", "value", "--load_in_8bit", "true", "--model_revision", "v1",
    ])
    assert isinstance(model, ModelConfig) and model.model_name_or_path == "my/model" and model.model_revision == "v1"
    assert model.peft == "lora" and model.lora_r == 4 and model.lora_target_modules == ["query", "value"]
    assert model.load_in_8bit and training.output_dir == str(tmp_path)


def test_peft_method_and_use_peft_agree():
    assert TokenLevelModelConfig().peft == "none" and not TokenLevelModelConfig().use_peft
    assert TokenLevelModelConfig(use_peft=True).peft == "lora"
    assert TokenLevelModelConfig(peft="none", use_peft=True).peft == "lora"  # TRL's --use_peft over a YAML 'none'
    assert TokenLevelModelConfig(peft="ia3").use_peft and not TokenLevelModelConfig(peft="none").use_peft
    with pytest.raises(ValueError, match="--peft 'adalora' is not a method.*lora"):
        TokenLevelModelConfig(peft="adalora")
    # TRL turns a one-element list into its string; PEFT would then match it against whole module paths
    assert TokenLevelModelConfig(lora_target_modules=["query"]).lora_target_modules == ["query"]
    assert TokenLevelModelConfig(lora_target_modules=["all-linear"]).lora_target_modules == "all-linear"


def test_peft_configs_follow_the_model_config():
    model = TokenLevelModelConfig(use_peft=True, lora_r=4, lora_alpha=8, lora_dropout=0.0, use_rslora=True,
                                  lora_modules_to_save=["pooler"])
    lora = model.peft_config("bert", task_type="TOKEN_CLS")
    assert isinstance(lora, LoraConfig) and lora.r == 4 and lora.lora_alpha == 8 and lora.use_rslora
    assert set(lora.target_modules) == {"query", "value"}  # PEFT's table for BERT
    assert "pooler" in lora.modules_to_save
    assert isinstance(TokenLevelModelConfig(peft="ia3").peft_config("bert", task_type="SEQ_CLS"), IA3Config)
    assert TokenLevelModelConfig().peft_config("bert", task_type="TOKEN_CLS") is None


def test_all_linear_reaches_peft_as_peft_reads_it():
    lora = TokenLevelModelConfig(use_peft=True, lora_target_modules=["all-linear"]).peft_config("llama", "CAUSAL_LM")
    assert lora.target_modules == "all-linear"  # not {'a', 'l', 'l', '-', ...}


def test_generation_loading_refuses_flags_the_packaged_gguf_cannot_take_and_methods_a_recipe_cannot_use():
    with pytest.raises(ValueError, match="--load_in_4bit cannot apply to the packaged SmolLM2.*--model_name_or_path"):
        TokenLevelModelConfig(load_in_4bit=True).load_generation_model()
    with pytest.raises(ValueError, match="--peft prompt_tuning is not supported here"):
        TokenLevelModelConfig(peft="prompt_tuning").prepare_peft(None, "CAUSAL_LM", methods=("none", "lora"))
    with pytest.raises(ValueError, match="lora_target_parameters is not supported"):
        TokenLevelModelConfig(lora_target_parameters=["experts"])


def test_4bit_compute_dtype_and_nested_quantization_follow_the_model_config():
    pytest.importorskip("bitsandbytes")
    from trl_tokenlevel.models.quantization import quantization_config

    config = quantization_config(load_in_4bit=True, compute_dtype=TokenLevelModelConfig(dtype="bfloat16").torch_dtype(),
                                 double_quant=TokenLevelModelConfig(use_bnb_nested_quant=False).use_bnb_nested_quant)
    assert str(config.bnb_4bit_compute_dtype) == "torch.bfloat16" and not config.bnb_4bit_use_double_quant
    assert TokenLevelModelConfig().use_bnb_nested_quant  # QLoRA's double quantization by default (TRL: off)


def test_from_pretrained_kwargs():
    kwargs = TokenLevelModelConfig(model_revision="v2", attn_implementation="eager", dtype="float32").from_pretrained_kwargs()
    assert kwargs == {"revision": "v2", "dtype": "float32", "attn_implementation": "eager"}


@pytest.mark.parametrize("recipe", ["ner_lora", "ner_online", "ner_feedback", "text_classification", "relation_extraction",
                                    "question_answering", "translate", "dialogue", "summarize_lora"])
def test_each_recipe_takes_trls_model_flags(recipe):
    """`--help` of the recipe (parsing only): TRL's ModelConfig flags are there once, beside our `--peft`."""
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, f"recipes/{recipe}.py", "--help"], cwd=root, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    for flag in ("--model_name_or_path", "--model_revision", "--use_peft", "--lora_r", "--load_in_8bit", "--load_in_4bit",
                 "--peft", "--num_virtual_tokens"):
        assert result.stdout.count(f"  {flag} ") == 1, flag
