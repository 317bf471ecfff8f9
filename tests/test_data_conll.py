import logging
from collections import Counter
from pathlib import Path

import datasets
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

from trl_tokenlevel.data import (
    CONLL2003_LABELS,
    ConllFormatError,
    default_conll2003_dir,
    iob1_to_iob2,
    load_conll2003,
    read_conll,
)


CONLL_DIR = Path(__file__).resolve().parents[2] / "shared/data/conll2003"
needs_conll = pytest.mark.skipif(not CONLL_DIR.is_dir(), reason=f"CoNLL-2003 data not found at {CONLL_DIR}")

# Published statistics, see ../shared/data/conll2003/SOURCE.md.
EXPECTED = {
    "train": dict(sentences=14041, tokens=203621, PER=6600, ORG=6321, LOC=7140, MISC=3438),
    "validation": dict(sentences=3250, tokens=51362, PER=1842, ORG=1341, LOC=1837, MISC=922),
    "test": dict(sentences=3453, tokens=46435, PER=1617, ORG=1661, LOC=1668, MISC=702),
}


def write(tmp_path, text, name="data.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def conll():
    return load_conll2003(CONLL_DIR)


@needs_conll
def test_load_conll2003_matches_published_counts(conll):
    assert list(conll) == ["train", "validation", "test"]
    for split, expected in EXPECTED.items():
        ds = conll[split]
        names = ds.features["ner_tags"].feature.names
        assert names == CONLL2003_LABELS
        assert len(ds) == expected["sentences"]
        assert sum(len(tokens) for tokens in ds["tokens"]) == expected["tokens"]
        entities = Counter(names[t][2:] for tags in ds["ner_tags"] for t in tags if names[t].startswith("B-"))
        assert {k: entities[k] for k in ("PER", "ORG", "LOC", "MISC")} == {
            k: expected[k] for k in ("PER", "ORG", "LOC", "MISC")
        }


@needs_conll
def test_real_files_are_strict_iob2_and_load_without_conversion(conll, caplog):
    with caplog.at_level(logging.INFO, logger="trl_tokenlevel"):
        strict = read_conll(CONLL_DIR / "train.txt", scheme="IOB2")
        default = read_conll(CONLL_DIR / "train.txt")
    assert len(strict) == len(default) == 14041
    assert strict["ner_tags"][:] == default["ner_tags"][:] == conll["train"]["ner_tags"][:]
    assert "converted" not in caplog.text


@needs_conll
def test_first_training_sentence(conll):
    first = conll["train"][0]
    assert first["id"] == "0"
    assert first["tokens"] == ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."]
    tags = [CONLL2003_LABELS[t] for t in first["ner_tags"]]
    assert tags == ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"]


@needs_conll
def test_max_samples_take_the_first_sentences(conll):
    small = load_conll2003(CONLL_DIR, max_train_samples=5, max_eval_samples=3)
    assert [len(small[s]) for s in small] == [5, 3, 3]
    assert small["train"]["tokens"][:] == conll["train"].select(range(5))["tokens"][:]
    assert small["test"]["id"][:] == ["0", "1", "2"]


@needs_conll
def test_default_dir_found_from_repo_root_and_elsewhere(monkeypatch, tmp_path):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert default_conll2003_dir() == CONLL_DIR.resolve()
    monkeypatch.chdir(tmp_path)  # not next to shared/: falls back to the package's repository root
    assert default_conll2003_dir() == CONLL_DIR.resolve()


def test_iob1_is_converted_to_iob2_automatically(tmp_path):
    path = write(tmp_path, "-DOCSTART- -X- O\n\nPeter NNP I-PER\nBlackburn NNP I-PER\nin IN O\nBonn NNP I-LOC\n"
                 "Köln NNP B-LOC\n\nhi UH O\n")  # fmt: skip
    ds = read_conll(path)
    assert ds["tokens"][:] == [["Peter", "Blackburn", "in", "Bonn", "Köln"], ["hi"]]
    tags = [[CONLL2003_LABELS[t] for t in s] for s in ds["ner_tags"]]
    assert tags == [["B-PER", "I-PER", "O", "B-LOC", "B-LOC"], ["O"]]
    with pytest.raises(ConllFormatError, match=r"line 3: tag 'I-PER' follows the start of the sentence"):
        read_conll(path, scheme="IOB2")  # IOB1 input under IOB2 is refused, no longer kept as is (issue 15)


def test_iob2_input_is_left_unchanged_even_when_iob1_is_forced(tmp_path):
    path = write(tmp_path, "EU B-ORG\nrejects O\nGerman B-MISC\nlamb O\n\n\n\nNew B-LOC\nYork I-LOC\n")
    expected = [["B-ORG", "O", "B-MISC", "O"], ["B-LOC", "I-LOC"]]
    for scheme in ("auto", "IOB1", "IOB2"):
        tags = [[CONLL2003_LABELS[t] for t in s] for s in read_conll(path, scheme=scheme)["ner_tags"]]
        assert tags == expected
    assert iob1_to_iob2(["I-PER", "B-PER", "I-PER", "I-ORG"]) == ["B-PER", "B-PER", "I-PER", "B-ORG"]


def test_columns_labels_and_docstart_options(tmp_path):
    path = write(tmp_path, "-DOCSTART- O\n\nSAM X\nsays Y\n")
    ds = read_conll(path, tag_column=1, label_names=["O", "X", "Y"])
    assert ds.features["ner_tags"] == Sequence(ClassLabel(names=["O", "X", "Y"]))
    assert ds["ner_tags"][:] == [[1, 2]]
    kept = read_conll(path, label_names=["O", "X", "Y"], skip_docstart=False)
    assert kept["tokens"][:] == [["-DOCSTART-"], ["SAM", "says"]]
    with pytest.raises(ValueError, match="scheme"):
        read_conll(path, scheme="BIOES")


def test_inconsistent_column_count_names_file_line_and_fix(tmp_path):
    path = write(tmp_path, "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman B-MISC\n")
    with pytest.raises(ConllFormatError) as error:
        read_conll(path)
    message = str(error.value)
    assert str(path) in message and "line 3" in message
    assert "expected 4" in message and "found 2" in message and "as on line 1" in message
    assert "Fix" in message


def test_too_few_columns_names_file_and_line(tmp_path):
    path = write(tmp_path, "EU\nrejects\n")
    with pytest.raises(ConllFormatError, match=r"line 1: expected at least 2 .* found 1.*Fix"):
        read_conll(path)


def test_unknown_tag_names_tag_file_line_and_known_labels(tmp_path):
    path = write(tmp_path, "EU B-ORG\n\nrejects O\nApple B-COMPANY\n")
    with pytest.raises(ConllFormatError) as error:
        read_conll(path)
    message = str(error.value)
    assert "'B-COMPANY'" in message and str(path) in message and "line 4" in message
    assert str(CONLL2003_LABELS) in message


def test_empty_file_is_an_error(tmp_path):
    with pytest.raises(ConllFormatError, match="no sentences"):
        read_conll(write(tmp_path, "-DOCSTART- -X- O\n\n"))


def test_local_folder_accepts_dev_and_conll_names_and_lists_what_it_looked_for(tmp_path):
    write(tmp_path, "EU B-ORG\n", "train.conll")
    write(tmp_path, "Bonn B-LOC\n", "dev.txt")
    write(tmp_path, "Peter B-PER\n", "test.txt")
    ds = load_conll2003(tmp_path)
    assert [ds[s]["tokens"][:] for s in ds] == [[["EU"]], [["Bonn"]], [["Peter"]]]
    (tmp_path / "dev.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"No validation file .*valid\.txt.*validation\.txt.*dev\.txt"):
        load_conll2003(tmp_path)
    with pytest.raises(ValueError, match="not both"):
        load_conll2003(tmp_path, dataset_name="eriktks/conll2003")


def _fake_hub_dataset(label_names):
    features = Features(
        {
            "id": Value("string"),
            "tokens": Sequence(Value("string")),
            "pos_tags": Sequence(Value("int32")),
            "ner_tags": Sequence(ClassLabel(names=label_names)),
        }
    )
    rows = {"id": ["7"], "tokens": [["EU", "rejects"]], "pos_tags": [[1, 2]], "ner_tags": [[3, 0]]}
    return DatasetDict(
        {split: Dataset.from_dict(rows, features=features) for split in ("train", "validation", "test")}
    )


def test_hub_dataset_keeps_only_id_tokens_and_tags(monkeypatch):
    calls = []

    def fake_load_dataset(name, **kwargs):
        calls.append((name, kwargs))
        return _fake_hub_dataset(CONLL2003_LABELS)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = load_conll2003(dataset_name="eriktks/conll2003", max_eval_samples=1)
    assert calls == [("eriktks/conll2003", {})]  # in particular, no trust_remote_code
    assert ds["validation"].column_names == ["id", "tokens", "ner_tags"]
    assert ds["train"][0] == {"id": "7", "tokens": ["EU", "rejects"], "ner_tags": [3, 0]}


def test_hub_dataset_with_other_label_order_is_refused(monkeypatch):
    reordered = CONLL2003_LABELS[::-1]
    monkeypatch.setattr(datasets, "load_dataset", lambda name, **kwargs: _fake_hub_dataset(reordered))
    with pytest.raises(ValueError, match="expected ClassLabel names"):
        load_conll2003(dataset_name="someone/conll")
