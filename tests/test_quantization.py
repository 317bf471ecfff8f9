"""8-bit / 4-bit backbones: config, support checks with their error messages, and LoRA training on a k-bit tiny BERT."""

import importlib.util

import pytest
import torch

from tiny import SYNTH_LABELS, synthetic_dataset, tiny_bert, word_tokenizer
from trl_tokenlevel import TokenLevelModelConfig, TokenLevelRLConfig, TokenLevelRLTrainer
from trl_tokenlevel.hub.export import merge_adapters
from trl_tokenlevel.models.quantization import (
    check_quantization_support,
    is_quantized,
    quantization_config,
    quantization_name,
    resolve_model_init_kwargs,
)
from trl_tokenlevel.rewards import TokenAccuracyReward


KBIT_WORKS = importlib.util.find_spec("bitsandbytes") is not None and (
    torch.cuda.is_available() or "AVX512" in torch.backends.cpu.get_cpu_capability()
)
needs_kbit = pytest.mark.skipif(not KBIT_WORKS, reason="bitsandbytes needs CUDA or an AVX512 CPU")


def test_quantization_config_keeps_heads_in_full_precision():
    assert quantization_config() is None
    eight = quantization_config(load_in_8bit=True)
    assert eight.load_in_8bit and eight.llm_int8_skip_modules == ["classifier", "score", "lm_head"]
    four = quantization_config(load_in_4bit=True)
    assert four.load_in_4bit and four.bnb_4bit_quant_type == "nf4" and four.bnb_4bit_compute_dtype == torch.float32
    with pytest.raises(ValueError, match="choose one"):
        quantization_config(load_in_8bit=True, load_in_4bit=True)
    with pytest.raises(ValueError, match="8 bit and 4 bit"):  # TRL's own check, in the recipes' model config
        TokenLevelModelConfig(load_in_8bit=True, load_in_4bit=True)
    kwargs = resolve_model_init_kwargs({"load_in_8bit": True, "dtype": "float32"}) if KBIT_WORKS else {}
    assert not KBIT_WORKS or (kwargs["quantization_config"].load_in_8bit and "load_in_8bit" not in kwargs)


def test_unsupported_setups_say_why_and_what_to_do(monkeypatch):
    check_quantization_support()  # nothing requested: never raises
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    with pytest.raises(RuntimeError, match="capability is 'AVX2'.*need AVX512.*run on a CUDA GPU"):
        check_quantization_support(load_in_8bit=True)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real_find_spec(name, *a))
    with pytest.raises(ImportError, match="--load_in_4bit needs bitsandbytes.*pip install bitsandbytes"):
        check_quantization_support(load_in_4bit=True)


@needs_kbit
@pytest.mark.parametrize("bits", [8, 4])
def test_lora_trains_on_a_kbit_backbone_loaded_by_the_trainer(tmp_path, bits):
    import bitsandbytes as bnb
    from peft import LoraConfig

    base = tmp_path / "base"
    tiny_bert(hidden=64).save_pretrained(base)
    word_tokenizer().save_pretrained(base)
    args = TokenLevelRLConfig(
        output_dir=str(tmp_path / "run"), max_steps=6, per_device_train_batch_size=16, learning_rate=2e-2,
        report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, logging_steps=1,
        model_init_kwargs={f"load_in_{bits}bit": True},
    )
    lora = LoraConfig(task_type="TOKEN_CLS", r=4, lora_alpha=8, target_modules=["query", "value"])
    trainer = TokenLevelRLTrainer(
        model=str(base), reward_funcs=[TokenAccuracyReward()], args=args, train_dataset=synthetic_dataset(96),
        peft_config=lora, label_list=SYNTH_LABELS,
    )
    layer = trainer.model.base_model.model.bert.encoder.layer[0]
    expected = bnb.nn.Linear8bitLt if bits == 8 else bnb.nn.Linear4bit
    assert isinstance(layer.attention.self.query.base_layer, expected)
    assert isinstance(layer.attention.self.key, expected)
    head = trainer.model.base_model.model.classifier.modules_to_save["default"]
    assert type(head) is torch.nn.Linear and head.weight.dtype == torch.float32 and head.weight.requires_grad
    assert is_quantized(trainer.model) and quantization_name(trainer.model) == f"{bits}-bit"  # what the model card says
    start = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    changed = [n for n, p in trainer.model.named_parameters() if n in start and not torch.equal(p, start[n])]
    assert any("lora_B" in n for n in changed) and any("classifier" in n for n in changed)
    losses = [h["ce_loss"] for h in trainer.state.log_history if "ce_loss" in h]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    with pytest.raises(ValueError, match="merge_adapter_checkpoint"):
        merge_adapters(trainer.model)
    # merge_adapters on a k-bit run: the adapter is merged into a full-precision copy of the base
    trainer.args.merge_adapters = True
    trainer.save_model(str(tmp_path / "merged"))
    from transformers import AutoModelForTokenClassification

    merged = AutoModelForTokenClassification.from_pretrained(tmp_path / "merged")
    assert not hasattr(merged.config, "quantization_config") and merged.config.id2label[1] == "B-PER"
    assert quantization_name(merged) is None
    assert all(p.dtype == torch.float32 for p in merged.parameters())
    inputs = word_tokenizer()(["w1 w12 w17 w20"], return_tensors="pt")
    with torch.no_grad():
        agreement = (merged(**inputs).logits.argmax(-1) == trainer.model.eval()(**inputs).logits.argmax(-1)).float()
    assert agreement.mean() >= 0.8  # same model up to the rounding of the k-bit weights


@needs_kbit
def test_quantized_backbone_without_adapters_is_refused(tmp_path):
    base = tmp_path / "base"
    tiny_bert(hidden=64).save_pretrained(base)
    word_tokenizer().save_pretrained(base)
    args = TokenLevelRLConfig(output_dir=str(tmp_path / "run"), report_to="none", use_cpu=True,
                              model_init_kwargs={"load_in_8bit": True})
    with pytest.raises(ValueError, match="cannot be trained directly.*peft_config"):
        TokenLevelRLTrainer(model=str(base), args=args, train_dataset=synthetic_dataset(8), label_list=SYNTH_LABELS)
