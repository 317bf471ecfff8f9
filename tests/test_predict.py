"""predict_word_labels: one tag per word from its first sub-token; argmax or a reproducible sample; long sentences in
windows (more in test_long_sentences.py)."""

import torch
from test_feedback import wordpiece_tokenizer
from tiny import SYNTH_LABELS, tiny_bert

from trl_tokenlevel.token_classification.predict import predict_word_labels


def test_first_sub_token_argmax_sampling_and_windows():
    model, tokenizer = tiny_bert(seed=3, hidden=16), wordpiece_tokenizer()
    model.config.vocab_size = 9
    sentences = [["abcd", "ef", "ghij"], ["ef"]]  # [CLS] ab ##cd ef gh ##ij [SEP] / [CLS] ef [SEP]
    encoding = tokenizer(sentences, is_split_into_words=True, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model.eval()(**encoding).logits
    first = [[1, 3, 4], [1]]  # positions of each word's first sub-token
    expected = [[SYNTH_LABELS[int(logits[b, p].argmax())] for p in positions] for b, positions in enumerate(first)]
    model.train()
    assert predict_word_labels(model, tokenizer, sentences, batch_size=1) == expected
    assert model.training  # the mode is restored

    sample = lambda seed: predict_word_labels(
        model, tokenizer, sentences * 20, sample=True, generator=torch.Generator().manual_seed(seed), temperature=5.0)
    assert sample(0) == sample(0) and sample(0) != sample(1)
    assert sample(0) != expected * 20  # at a high temperature the samples leave the argmax

    # [CLS] ab ##cd ef [SEP] / [CLS] ef gh ##ij [SEP]: the third word is read from the second window, not cut
    with torch.no_grad():
        window_logits = model.eval()(input_ids=torch.tensor([[2, 4, 5, 6, 3], [2, 6, 7, 8, 3]])).logits
    long = predict_word_labels(model, tokenizer, [["abcd", "ef", "ghij"]], max_length=5, stride=1, outside="<cut>")
    assert long == [[SYNTH_LABELS[int(window_logits[0, p].argmax())] for p in (1, 3)]
                    + [SYNTH_LABELS[int(window_logits[1, 2].argmax())]]]  # ef: at an edge of both, tie -> the first
