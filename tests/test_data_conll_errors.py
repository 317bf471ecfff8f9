"""Bad CoNLL input: each test is the reproduction of a case of issue 15 that used to fail silently or unhelpfully."""

import logging

import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

from trl_tokenlevel.data import CONLL2003_LABELS, ConllFormatError, load_conll2003, read_conll


def tag_names(ds):
    return [[CONLL2003_LABELS[t] for t in tags] for tags in ds["ner_tags"]]


def write_bytes(tmp_path, data, name="data.txt"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_latin1_file_names_file_line_byte_offset_and_fix(tmp_path):
    text = "EU NNP B-ORG\nrejects VBZ O\n\nKöln NNP B-LOC\n"
    path = write_bytes(tmp_path, text.encode("latin-1"))
    with pytest.raises(ConllFormatError) as error:
        read_conll(path)
    message = str(error.value)
    offset = text.index("ö")  # ASCII before it, so the byte offset equals the character index
    assert f"{path}, line 4" in message and f"byte offset {offset}" in message
    assert "0xf6" in message and "UTF-8" in message and "encoding=" in message
    # The fix the message gives works.
    assert read_conll(path, encoding="latin-1")["tokens"][:] == [["EU", "rejects"], ["Köln"]]


def test_latin1_file_through_load_conll2003_is_named_and_encoding_is_passed_on(tmp_path):
    write_bytes(tmp_path, "EU B-ORG\n".encode("latin-1"), "train.txt")
    write_bytes(tmp_path, "Köln B-LOC\n".encode("latin-1"), "valid.txt")
    write_bytes(tmp_path, "Bonn B-LOC\n".encode("latin-1"), "test.txt")
    with pytest.raises(ConllFormatError, match=r"valid\.txt, line 1: byte 0xf6 at byte offset 1"):
        load_conll2003(tmp_path)
    assert load_conll2003(tmp_path, encoding="latin-1")["validation"]["tokens"][:] == [["Köln"]]


def test_bom_before_docstart_is_stripped_so_docstart_is_skipped(tmp_path):
    # Same column count on the DOCSTART line as on token lines: before the fix it became a sentence "\ufeff-DOCSTART-".
    text = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n"
    ds = read_conll(write_bytes(tmp_path, text.encode("utf-8-sig")))
    assert ds["tokens"][:] == [["EU", "rejects"]]
    assert tag_names(ds) == [["B-ORG", "O"]]


def test_bom_with_windows_line_ends(tmp_path):
    text = "-DOCSTART- O\r\n\r\nEU B-ORG\r\nrejects O\r\n\r\nBonn B-LOC\r\n"
    ds = read_conll(write_bytes(tmp_path, text.encode("utf-8-sig")))
    assert ds["tokens"][:] == [["EU", "rejects"], ["Bonn"]]


@pytest.mark.parametrize(
    "text, line, tag, after",
    [
        ("Peter I-PER\nBlackburn I-PER\n", 1, "I-PER", "the start of the sentence"),
        ("EU B-ORG\nsays O\nPeter I-PER\n", 3, "I-PER", "'O'"),
        ("EU B-ORG\n\nin O\nNew B-LOC\nYork I-ORG\n", 5, "I-ORG", "'B-LOC'"),
    ],
)
def test_iob2_scheme_refuses_inside_tag_that_starts_an_entity(tmp_path, text, line, tag, after):
    path = write_bytes(tmp_path, text.encode())
    with pytest.raises(ConllFormatError) as error:
        read_conll(path, scheme="IOB2")
    message = str(error.value)
    assert f"{path}, line {line}: tag {tag!r} follows {after}" in message
    assert "scheme='IOB1'" in message and "Fix" in message


def test_iob1_scheme_converts_and_counts_in_the_log(tmp_path, caplog):
    path = write_bytes(tmp_path, b"Peter I-PER\nBlackburn I-PER\nin O\nBonn I-LOC\nKoeln B-LOC\n\nEU I-ORG\n")
    with caplog.at_level(logging.INFO, logger="trl_tokenlevel"):
        ds = read_conll(path, scheme="IOB1")
    assert tag_names(ds) == [["B-PER", "I-PER", "O", "B-LOC", "B-LOC"], ["B-ORG"]]
    assert "converted 3 of 5 entity tags from I- to B-" in caplog.text
    assert "first on line 1" in caplog.text


def test_auto_scheme_warns_with_count_and_first_line(tmp_path, caplog):
    # An IOB2 file with one stray I- (line 4): repaired, and the warning says where.
    path = write_bytes(tmp_path, b"EU B-ORG\nsays O\n\nin O\nPeter I-PER\n")
    with caplog.at_level(logging.INFO, logger="trl_tokenlevel"):
        ds = read_conll(path)
    assert tag_names(ds) == [["B-ORG", "O"], ["O", "B-PER"]]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "converted 1 of 2 entity tags from I- to B-" in warnings[0] and "first on line 5" in warnings[0]
    assert "scheme='IOB2'" in warnings[0]


def test_iob2_file_loads_without_conversion_log(tmp_path, caplog):
    path = write_bytes(tmp_path, b"New B-LOC\nYork I-LOC\nis O\n")
    with caplog.at_level(logging.INFO, logger="trl_tokenlevel"):
        for scheme in ("auto", "IOB2"):
            assert tag_names(read_conll(path, scheme=scheme)) == [["B-LOC", "I-LOC", "O"]]
    assert "converted" not in caplog.text


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", "\ufeff".encode(), b"-DOCSTART- -X- O\n\n"])
def test_file_without_sentences_names_the_file(tmp_path, content):
    path = write_bytes(tmp_path, content)
    with pytest.raises(ConllFormatError, match=f"{path}: no sentences found"):
        read_conll(path)


def test_empty_train_file_in_folder_names_the_file(tmp_path):
    write_bytes(tmp_path, b"", "train.txt")
    write_bytes(tmp_path, b"EU B-ORG\n", "valid.txt")
    write_bytes(tmp_path, b"EU B-ORG\n", "test.txt")
    with pytest.raises(ConllFormatError, match=r"train\.txt: no sentences found"):
        load_conll2003(tmp_path)


@pytest.mark.parametrize("limits", [{"max_train_samples": 0}, {"max_eval_samples": 0}, {"max_train_samples": -5}])
def test_sample_limits_that_leave_an_empty_split_are_refused(tmp_path, limits):
    for name in ("train.txt", "valid.txt", "test.txt"):
        write_bytes(tmp_path, b"EU B-ORG\n", name)
    name, value = next(iter(limits.items()))
    with pytest.raises(ValueError, match=f"{name}={value} .*positive integer.*None"):
        load_conll2003(tmp_path, **limits)


def test_empty_hub_split_is_refused(monkeypatch):
    import datasets

    tags = Sequence(ClassLabel(names=CONLL2003_LABELS))
    features = Features({"tokens": Sequence(Value("string")), "ner_tags": tags})
    rows = {"tokens": [["EU"]], "ner_tags": [[3]]}
    splits = {s: Dataset.from_dict(rows, features=features) for s in ("validation", "test")}
    splits["train"] = Dataset.from_dict({"tokens": [], "ner_tags": []}, features=features)
    monkeypatch.setattr(datasets, "load_dataset", lambda name, **kwargs: DatasetDict(splits))
    with pytest.raises(ValueError, match=r"'someone/conll' split 'train' has no rows"):
        load_conll2003(dataset_name="someone/conll")


def test_unknown_tag_after_conversion_names_both_tags(tmp_path):
    path = write_bytes(tmp_path, b"Peter I-PER\n")
    with pytest.raises(ConllFormatError, match=r"line 1: unknown tag 'B-PER' \(converted from IOB1 'I-PER'\)"):
        read_conll(path, label_names=["O", "I-PER"])
