"""Sentences longer than `max_length`: prediction and evaluation slide a window over them, so every word is labelled by
the model and scored, each from the window where it has the most context; training truncates, counted in a warning."""

import logging
import random

import datasets
import numpy as np
import pytest
import torch
from test_feedback import wordpiece_tokenizer
from tiny import SYNTH_LABELS, synthetic_sentence, tiny_bert, word_tokenizer

from trl_tokenlevel.metrics import align_predictions
from trl_tokenlevel.token_classification import TokenClassificationRLConfig, TokenClassificationRLTrainer
from trl_tokenlevel.token_classification.predict import predict_word_labels
from trl_tokenlevel.token_classification.windows import max_context_windows


MAX_LENGTH, STRIDE = 32, 8  # 30 word sub-tokens per window, a new window every 22


def long_sentence(num_words: int = 300, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"w{rng.randint(0, 29)}" for _ in range(num_words)]


def test_max_context_rule_on_window_lengths():
    # windows cover 0-3, 2-5, 4-5: sub-token 2 has 1 left/1 right in window 0 but 0 left in window 1; 5 ties -> earlier
    assert max_context_windows([4, 4, 2], stride=2) == [0, 0, 0, 1, 1, 1]
    assert max_context_windows([5], stride=2) == [0] * 5
    assert max_context_windows([6, 6, 6], stride=4) == [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]  # 0-5, 2-7, 4-9


def test_every_word_of_a_long_sentence_is_read_from_its_max_context_window():
    model, tokenizer = tiny_bert(seed=1, hidden=16), word_tokenizer()  # one sub-token per word
    sentence = long_sentence()
    # direct computation, window by window
    encoding = tokenizer([sentence], is_split_into_words=True, truncation=True, max_length=MAX_LENGTH, stride=STRIDE,
                         return_overflowing_tokens=True, padding=True, return_tensors="pt")
    with torch.no_grad():
        window_ids = model.eval()(input_ids=encoding["input_ids"], attention_mask=encoding["attention_mask"]).logits
    window_ids = window_ids.argmax(-1)  # (windows, T)
    content, step = MAX_LENGTH - 2, MAX_LENGTH - 2 - STRIDE
    starts = range(0, len(sentence), step)[: len(window_ids)]
    assert len(window_ids) == 14 and starts[-1] + content >= len(sentence)  # the windows cover the sentence

    def label_in(window, word):  # position: [CLS] first
        return SYNTH_LABELS[int(window_ids[window, 1 + word - starts[window]])]

    expected, disagreements = [], 0
    for word in range(len(sentence)):
        windows = [k for k, s in enumerate(starts) if s <= word < min(s + content, len(sentence))]
        ends = [min(starts[k] + content, len(sentence)) - 1 for k in windows]
        contexts = [min(word - starts[k], end - word) for k, end in zip(windows, ends)]
        best = windows[contexts.index(max(contexts))]
        expected.append(label_in(best, word))
        disagreements += len({label_in(k, word) for k in windows}) > 1
    assert disagreements > 10  # the choice of window matters for this model

    model.train()
    labels = predict_word_labels(model, tokenizer, [sentence, sentence[:5]], max_length=MAX_LENGTH, stride=STRIDE,
                                 batch_size=3, outside="<none>")
    assert model.training  # mode restored
    assert len(labels[0]) == 300 and "<none>" not in labels[0]
    assert labels[0] == expected
    # words in the middle of the first window: same as the window computed alone
    assert labels[0][5:20] == [label_in(0, w) for w in range(5, 20)]
    assert labels[1] == predict_word_labels(model, tokenizer, [sentence[:5]])[0]  # a short sentence: one window


def identity_tagger():
    """A tiny BERT whose label of a sub-token depends on its id only: no positions, attention and FFN add nothing,
    and one-hot embeddings read by the classifier. ab -> B-PER, ##cd -> I-PER, ef -> O, gh -> B-LOC, ##ij -> I-LOC."""
    model = tiny_bert(seed=0, hidden=16)
    with torch.no_grad():
        model.bert.embeddings.position_embeddings.weight.zero_()
        model.bert.embeddings.token_type_embeddings.weight.zero_()
        model.bert.embeddings.word_embeddings.weight.zero_()
        model.bert.embeddings.word_embeddings.weight[:9, :9] = torch.eye(9)  # the 9 ids of wordpiece_tokenizer()
        for layer in model.bert.encoder.layer:
            for dense in (layer.attention.output.dense, layer.output.dense):
                dense.weight.zero_()
                dense.bias.zero_()
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        for label, token in enumerate([6, 4, 5, 7, 8]):  # O=ef, B-PER=ab, I-PER=##cd, B-LOC=gh, I-LOC=##ij
            model.classifier.weight[label, token] = 1.0
    return model


def test_a_long_sentence_gets_the_labels_its_words_get_in_short_sentences():
    model, tokenizer = identity_tagger(), wordpiece_tokenizer()
    rng = random.Random(3)
    sentence = [rng.choice(["abcd", "ef", "ghij", "ab"]) for _ in range(300)]  # words of 1 or 2 sub-tokens
    alone = predict_word_labels(model, tokenizer, [[w] for w in sentence], max_length=MAX_LENGTH, stride=STRIDE)
    assert {w: tags[0] for w, tags in zip(sentence, alone)} == {"abcd": "B-PER", "ab": "B-PER", "ef": "O",
                                                                "ghij": "B-LOC"}  # each word by its first sub-token
    for stride in (0, STRIDE, 25):
        long = predict_word_labels(model, tokenizer, [sentence], max_length=MAX_LENGTH, stride=stride, outside="<none>")
        assert long == [[tags[0] for tags in alone]], stride
    samples = lambda seed: predict_word_labels(  # one draw per word, reproducible
        model, tokenizer, [sentence], sample=True, generator=torch.Generator().manual_seed(seed), temperature=0.05,
        max_length=MAX_LENGTH, stride=STRIDE)
    assert samples(0) == samples(0) == [[tags[0] for tags in alone]]  # near-greedy temperature: the argmax


def raw_dataset(sentences: list[tuple[list[str], list[int]]]) -> datasets.Dataset:
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=SYNTH_LABELS))})
    return datasets.Dataset.from_dict({"tokens": [s[0] for s in sentences], "ner_tags": [s[1] for s in sentences]},
                                      features=features)


def long_tagged_sentence(min_words: int, seed: int) -> tuple[list[str], list[int]]:
    rng, tokens, tags = random.Random(seed), [], []
    while len(tokens) < min_words:
        more_tokens, more_tags = synthetic_sentence(rng)
        tokens, tags = tokens + more_tokens, tags + more_tags
    return tokens, tags


def test_evaluation_and_prediction_score_every_word_of_a_long_sentence(tmp_path, caplog):
    rng = random.Random(1)
    rows = [synthetic_sentence(rng), long_tagged_sentence(300, seed=2), synthetic_sentence(rng)]
    gold = [[SYNTH_LABELS[t] for t in tags] for _, tags in rows]
    gold_entities = sum(tag.startswith("B-") for tags in gold for tag in tags)
    args = TokenClassificationRLConfig(output_dir=str(tmp_path), max_length=MAX_LENGTH, eval_stride=STRIDE,
                                       per_device_eval_batch_size=4, report_to="none", use_cpu=True, disable_tqdm=True)
    with caplog.at_level(logging.WARNING):
        trainer = TokenClassificationRLTrainer(tiny_bert(seed=5, hidden=16), args=args, train_dataset=raw_dataset(rows),
                                               eval_dataset=raw_dataset(rows), processing_class=word_tokenizer())
    messages = [r.getMessage() for r in caplog.records]
    assert any("from 1 of 3 sentences" in m and "sliding window" in m for m in messages)  # training truncates
    assert any("1 of 3 sentences are longer than max_length=32" in m and "14 windows" in m for m in messages)
    assert len(trainer.eval_dataset) == 2 + 14

    metrics = trainer.evaluate()
    assert metrics["eval_PER_support"] + metrics["eval_LOC_support"] == gold_entities  # all gold entities scored

    prediction = trainer.predict(trainer.prepare_dataset(raw_dataset(rows)))
    true_tags, pred_tags = align_predictions(prediction.predictions, prediction.label_ids, SYNTH_LABELS)
    assert true_tags == gold  # one row per sentence, every gold word once, in order
    expected = predict_word_labels(trainer.model, word_tokenizer(), [tokens for tokens, _ in rows],
                                   max_length=MAX_LENGTH, stride=STRIDE)
    assert pred_tags == expected  # the same windows and the same max-context choice as predict_word_labels
    accuracy = np.mean([p == g for ps, gs in zip(expected, gold) for p, g in zip(ps, gs)])
    assert prediction.metrics["test_token_accuracy"] == pytest.approx(accuracy)
    assert metrics["eval_token_accuracy"] == pytest.approx(accuracy)


def test_bad_strides_are_refused_naming_the_fix(tmp_path):
    model, tokenizer = tiny_bert(hidden=16), word_tokenizer()
    for stride in (30, -1):  # 32 - [CLS] - [SEP] = 30 sub-tokens per window
        with pytest.raises(ValueError, match=rf"stride={stride} must be >= 0 and smaller than .* \(30\)\. Fix: pass"):
            predict_word_labels(model, tokenizer, [["w1"]], max_length=MAX_LENGTH, stride=stride)
    with pytest.raises(ValueError, match="eval_stride=128 must be >= 0 and smaller than max_length=128.*Fix: lower"):
        TokenClassificationRLConfig(output_dir=str(tmp_path), eval_stride=128)
    args = TokenClassificationRLConfig(output_dir=str(tmp_path), max_length=MAX_LENGTH, eval_stride=31,
                                       report_to="none", use_cpu=True)
    with pytest.raises(ValueError, match=r"stride=31 must be .*Fix: pass a stride in \[0, 29\]"):
        TokenClassificationRLTrainer(model, args=args, train_dataset=raw_dataset([long_tagged_sentence(5, 0)]),
                                     eval_dataset=raw_dataset([long_tagged_sentence(5, 0)]), processing_class=tokenizer)
    args = TokenClassificationRLConfig(output_dir=str(tmp_path), max_length=MAX_LENGTH, eval_stride=STRIDE,
                                       remove_unused_columns=True, report_to="none", use_cpu=True)
    with pytest.raises(ValueError, match="remove_unused_columns=True would drop it. Fix: remove_unused_columns=False"):
        TokenClassificationRLTrainer(model, args=args, train_dataset=raw_dataset([long_tagged_sentence(5, 0)]),
                                     eval_dataset=raw_dataset([long_tagged_sentence(60, 0)]),
                                     processing_class=tokenizer)


def test_a_1000_word_sentence_is_labelled_and_scored_word_for_word(tmp_path):
    """The issue's case: 1,000 words, far beyond max_length; prediction labels every word, evaluation scores them."""
    tokens, tags = long_tagged_sentence(1000, seed=3)
    tokens, tags = tokens[:1000], tags[:1000]
    model, tokenizer = tiny_bert(seed=2, hidden=16), word_tokenizer()
    labels = predict_word_labels(model, tokenizer, [tokens], max_length=MAX_LENGTH, stride=STRIDE, outside="<none>")
    assert len(labels[0]) == 1000 and "<none>" not in labels[0]
    args = TokenClassificationRLConfig(output_dir=str(tmp_path), max_length=MAX_LENGTH, eval_stride=STRIDE,
                                       report_to="none", use_cpu=True, disable_tqdm=True)
    trainer = TokenClassificationRLTrainer(model, args=args, train_dataset=raw_dataset([(tokens, tags)]),
                                           processing_class=tokenizer)
    prediction = trainer.predict(trainer.prepare_dataset(raw_dataset([(tokens, tags)])))
    true_tags, pred_tags = align_predictions(prediction.predictions, prediction.label_ids, SYNTH_LABELS)
    assert true_tags == [[SYNTH_LABELS[t] for t in tags]] and pred_tags == labels
