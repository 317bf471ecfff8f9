"""Tiny random models, tokenizers and synthetic data for the trainer tests (no downloads)."""

from __future__ import annotations

import random

import datasets
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import BertConfig, BertForTokenClassification, PreTrainedTokenizerFast


SYNTH_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
WORDS = [f"w{i}" for i in range(30)]


def word_tokenizer() -> PreTrainedTokenizerFast:
    """A whitespace word-level BERT-style tokenizer over `w0`..`w29` ([CLS] x [SEP])."""
    vocab = {tok: i for i, tok in enumerate(SPECIALS + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )


def tiny_bert(num_labels: int = len(SYNTH_LABELS), seed: int = 0, hidden: int = 32) -> BertForTokenClassification:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(SPECIALS) + len(WORDS), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=64, num_labels=num_labels,
        id2label=dict(enumerate(SYNTH_LABELS)), label2id={n: i for i, n in enumerate(SYNTH_LABELS)},
    )
    return BertForTokenClassification(config)


def synthetic_sentence(rng: random.Random) -> tuple[list[str], list[int]]:
    """Words w10-w14 start a person, w15-w19 continue it; w20-w24 start a location, w25-w29 continue it; rest O."""
    tokens, tags = [], []
    while len(tokens) < rng.randint(4, 10):
        kind = rng.random()
        if kind < 0.2:
            tokens += [f"w{rng.randint(10, 14)}", f"w{rng.randint(15, 19)}"]
            tags += [1, 2]
        elif kind < 0.35:
            tokens += [f"w{rng.randint(20, 24)}"] + ([f"w{rng.randint(25, 29)}"] if rng.random() < 0.5 else [])
            tags += [3] + ([4] if len(tokens) > len(tags) + 1 else [])
        else:
            tokens.append(f"w{rng.randint(0, 9)}")
            tags.append(0)
    return tokens, tags


def synthetic_dataset(num_sentences: int, seed: int = 0, tokenized: bool = True) -> datasets.Dataset:
    """Synthetic NER data; tokenized as `[CLS] words [SEP]` with labels -100 on the specials."""
    rng = random.Random(seed)
    rows = [synthetic_sentence(rng) for _ in range(num_sentences)]
    if not tokenized:
        features = datasets.Features(
            {
                "tokens": datasets.Sequence(datasets.Value("string")),
                "ner_tags": datasets.Sequence(datasets.ClassLabel(names=SYNTH_LABELS)),
            }
        )
        return datasets.Dataset.from_dict(
            {"tokens": [r[0] for r in rows], "ner_tags": [r[1] for r in rows]}, features=features
        )
    offset = len(SPECIALS)
    return datasets.Dataset.from_dict(
        {
            "input_ids": [[2] + [offset + int(w[1:]) for w in toks] + [3] for toks, _ in rows],
            "attention_mask": [[1] * (len(toks) + 2) for toks, _ in rows],
            "labels": [[-100] + tags + [-100] for _, tags in rows],
        }
    )


def perturb(model: torch.nn.Module, seed: int = 7, scale: float = 0.05) -> None:
    """Adds the same seeded Gaussian noise to every trainable parameter, in place: moves a policy away from its
    frozen reference (made when the trainer was built), so a KL term has a non-zero gradient."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, parameter in model.named_parameters():
            if parameter.requires_grad:
                parameter.add_(scale * torch.randn(parameter.shape, generator=generator))


def fixed_gumbel(*shape: int, seed: int = 1234) -> torch.Tensor:
    """Gumbel(0, 1) noise of `shape` from its own generator: the same numbers in every call, so a Gumbel-max sampler
    built on it draws the same action for a (sample, position, label) however the batch is split."""
    generator = torch.Generator().manual_seed(seed)
    return -torch.log(-torch.log(torch.rand(*shape, generator=generator)))


def assert_same_update(results: list, start_state: dict, kl_coef: float) -> None:
    """Gradient-accumulation check: `results` holds `(first log entry, parameters after the step)` for a 1 x 8 and a
    2 x 4 run; the logged loss, reward (and KL) and every updated parameter must agree, and the update must be real."""
    import pytest

    (log_a, params_a), (log_b, params_b) = results
    assert log_a["loss"] == pytest.approx(log_b["loss"], rel=1e-4, abs=1e-6)
    assert log_a["reward"] == pytest.approx(log_b["reward"], rel=1e-5)
    if kl_coef:
        assert log_a["kl"] > 1e-3 and log_a["kl"] == pytest.approx(log_b["kl"], rel=1e-5)
    moved = 0
    for name, value in params_a.items():
        torch.testing.assert_close(value, params_b[name], rtol=1e-4, atol=1e-5, msg=name)
        moved += int(not torch.allclose(value, start_state[name]))
    assert moved > 10  # the update is not trivially zero
