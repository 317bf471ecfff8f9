"""Loaders and QA features for the encoder tasks: SST-2, SemEval-2010 Task 8, SQuAD v1.1."""

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

from trl_tokenlevel.data.qa_features import (
    NO_OFFSET,
    postprocess_qa_predictions,
    prepare_qa_eval_features,
    prepare_qa_train_features,
)
from trl_tokenlevel.data.semeval import (
    ENTITY_MARKERS,
    SEMEVAL2010_TASK8_LABELS,
    SemEvalFormatError,
    add_entity_marker_tokens,
    load_semeval2010_task8,
    read_semeval2010_task8,
)
from trl_tokenlevel.data.squad import SquadFormatError, load_squad, read_squad_json, squad_article_splits
from trl_tokenlevel.data.sst2 import SST2_LABELS, Sst2FormatError, load_sst2, read_sst2_tsv

DATA = Path(__file__).resolve().parents[2] / "shared/data"
needs = {name: pytest.mark.skipif(not (DATA / name).is_dir(), reason=f"{DATA / name} not found")
         for name in ("sst2", "semeval2010_task8", "squad")}  # fmt: skip

WORDS = "the bridge in paris was built 1850 by john smith . river is old city of new york 1900 who when what ? ##son"


def tiny_qa_tokenizer():
    """A fast uncased WordPiece tokenizer over a few words, built offline."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS.split()
    return BertTokenizer(vocab={token: i for i, token in enumerate(vocab)})


CONTEXT = (
    "The bridge in Paris was built in 1850 by John Smithson. The river is old. The city of New York was built in 1900."
)
QA_EXAMPLES = {
    "id": ["q1", "q2"],
    "question": ["   Who built the bridge?", "When was New York built?"],
    "context": [CONTEXT, CONTEXT],
    "answers": [
        {"text": ["John Smithson"], "answer_start": [CONTEXT.index("John Smithson")]},
        {"text": ["1900", "in 1900"], "answer_start": [CONTEXT.index("1900"), CONTEXT.index("in 1900")]},
    ],
}


# --- SST-2 -----------------------------------------------------------------------------------------------------


@needs["sst2"]
def test_sst2_local_splits_match_source_md():
    sst2 = load_sst2()
    expected = {"train": (60614, 33828), "validation": (6735, 3741), "test": (872, 444)}
    for split, (rows, positive) in expected.items():
        assert len(sst2[split]) == rows and sum(sst2[split]["label"]) == positive
    assert sst2["test"].features["label"].names == SST2_LABELS
    assert sst2["test"][0] == {"idx": 0, "sentence": "it 's a charming and often affecting journey . ", "label": 1}


def test_sst2_bad_label_names_file_and_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\ngood film \t1\nbad film \tneg\n")
    with pytest.raises(Sst2FormatError, match=r"train\.tsv, line 3: label 'neg'.*Fix"):
        read_sst2_tsv(path)
    path.write_text("text\tlabel\nx\t1\n")
    with pytest.raises(Sst2FormatError, match="line 1: expected the header"):
        read_sst2_tsv(path)


# --- SemEval-2010 Task 8 ---------------------------------------------------------------------------------------


def test_semeval_label_order_is_the_hub_order():
    assert SEMEVAL2010_TASK8_LABELS[:3] == ["Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Component-Whole(e1,e2)"]
    assert SEMEVAL2010_TASK8_LABELS[16:] == ["Product-Producer(e1,e2)", "Product-Producer(e2,e1)", "Other"]
    assert len(set(SEMEVAL2010_TASK8_LABELS)) == 19


@needs["semeval2010_task8"]
def test_semeval_local_counts_match_source_md():
    semeval = load_semeval2010_task8()
    assert {split: len(ds) for split, ds in semeval.items()} == {"train": 7200, "validation": 800, "test": 2717}
    assert all(int(i) % 10 == 0 for i in semeval["validation"]["id"])
    names = SEMEVAL2010_TASK8_LABELS
    counts = {split: Counter(names[i] for i in ds["relation"]) for split, ds in semeval.items()}
    official_train = counts["train"] + counts["validation"]
    assert official_train["Other"] == 1410 and counts["test"]["Other"] == 454
    assert (official_train["Entity-Destination(e1,e2)"], official_train["Entity-Destination(e2,e1)"]) == (844, 1)
    assert (counts["test"]["Cause-Effect(e1,e2)"], counts["test"]["Cause-Effect(e2,e1)"]) == (134, 194)
    first = semeval["train"][0]
    assert first["id"] == "1" and names[first["relation"]] == "Component-Whole(e2,e1)"
    assert "<e1>configuration</e1> of antenna <e2>elements</e2>." in first["sentence"]
    quoted = semeval["train"].filter(lambda row: row["id"] == "629")[0]["sentence"]
    assert quoted.startswith('"Just like real baseball,"')  # only the outer pair of quotes is removed


RECORD = '{id}\t"{sentence}"\r\n{label}\r\nComment:{comment}\r\n\r\n'


def _semeval_file(tmp_path, records):
    path = tmp_path / "TRAIN_FILE.TXT"
    path.write_bytes("".join(RECORD.format(**r) for r in records).encode())
    return path


GOOD = dict(id=1, sentence="The <e1>child</e1> was in the <e2>cradle</e2>.", label="Other", comment="")


def test_semeval_reader_crlf_and_lf_agree(tmp_path):
    second = dict(GOOD, id=2, label="Cause-Effect(e2,e1)", comment=" a note")
    crlf = read_semeval2010_task8(_semeval_file(tmp_path, [GOOD, second]))
    lf_path = tmp_path / "lf.txt"
    lf_path.write_bytes((tmp_path / "TRAIN_FILE.TXT").read_bytes().replace(b"\r\n", b"\n"))
    assert crlf.to_list() == read_semeval2010_task8(lf_path).to_list()
    assert crlf["relation"] == [18, 1] and crlf["id"] == ["1", "2"]


@pytest.mark.parametrize(
    "bad, line, message",
    [
        (dict(GOOD, id=2, sentence="The child was in the <e2>cradle</e2>."), 5, "record 2: each entity marker"),
        (dict(GOOD, id=2, sentence="The </e1>child<e1> in <e2>x</e2>."), 5, "record 2: </e1> comes before <e1>"),
        (dict(GOOD, id=2, label="Cause-Effect"), 6, "record 2: unknown label 'Cause-Effect'"),
        (dict(GOOD, id=1), 5, "id 1 already used on line 1"),
    ],
)
def test_semeval_reader_errors_name_file_line_and_record(tmp_path, bad, line, message):
    with pytest.raises(SemEvalFormatError, match=rf"TRAIN_FILE\.TXT, line {line}: {message}.*Fix"):
        read_semeval2010_task8(_semeval_file(tmp_path, [GOOD, bad]))


def test_semeval_reader_rejects_a_malformed_block(tmp_path):
    path = tmp_path / "TRAIN_FILE.TXT"
    path.write_text(RECORD.format(**GOOD).replace("Comment:", "Note:"))
    with pytest.raises(SemEvalFormatError, match=r"line 3: expected a line starting with `Comment:`"):
        read_semeval2010_task8(path)


def test_add_entity_marker_tokens_keeps_markers_whole_and_resizes():
    tokenizer = tiny_qa_tokenizer()
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=19)  # fmt: skip
    model = BertForSequenceClassification(config)
    assert add_entity_marker_tokens(tokenizer, model) == 4
    tokens = tokenizer.tokenize("the <e1>bridge</e1> in <e2>paris</e2>")
    assert tokens == ["the", "<e1>", "bridge", "</e1>", "in", "<e2>", "paris", "</e2>"]
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    assert add_entity_marker_tokens(tokenizer) == 0  # idempotent
    assert set(ENTITY_MARKERS) <= set(tokenizer.all_special_tokens)


# --- SQuAD -----------------------------------------------------------------------------------------------------


@needs["squad"]
def test_squad_resplit_matches_source_md_and_splits_json():
    squad = load_squad()
    assert {split: len(ds) for split, ds in squad.items()} == {"train": 8195, "validation": 1145, "test": 1230}
    splits = json.loads((DATA / "squad/splits.json").read_text())
    for split, ds in squad.items():
        assert set(ds["title"]) == set(splits[split])
    data = json.loads((DATA / "squad/dev-v1.1.json").read_text())
    assert squad_article_splits([article["title"] for article in data["data"]]) == splits


def test_squad_bad_offset_names_question_and_fix(tmp_path):
    context = "The bridge was built in 1850."
    data = {"version": "1.1", "data": [{"title": "Bridge", "paragraphs": [{"context": context, "qas": [
        {"id": "q-ok", "question": "When?", "answers": [{"text": "1850", "answer_start": 24}]},
        {"id": "q-bad", "question": "When?", "answers": [{"text": "1850", "answer_start": 20}]},
    ]}]}]}  # fmt: skip
    path = tmp_path / "dev-v1.1.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SquadFormatError, match=r"question id 'q-bad'.*' in '.*Fix: set answer_start to one of \[24\]"):
        read_squad_json(path)
    data["data"][0]["paragraphs"][0]["qas"].pop()
    path.write_text(json.dumps(data))
    assert read_squad_json(path)[0]["answers"] == {"text": ["1850"], "answer_start": [24]}


# --- QA features -----------------------------------------------------------------------------------------------


def test_train_features_slide_windows_and_target_the_answer():
    tokenizer = tiny_qa_tokenizer()
    features = prepare_qa_train_features(QA_EXAMPLES, tokenizer, max_length=20, doc_stride=6, keep_offsets=True)
    n = len(features["input_ids"])
    assert n > 2 and all(len(ids) == 20 for ids in features["input_ids"])
    found = Counter()
    for i in range(n):
        start, end = features["start_positions"][i], features["end_positions"][i]
        example = QA_EXAMPLES["id"].index(features["example_id"][i])
        offsets = features["offset_mapping"][i]
        if start == 0:  # [CLS]: the answer is not (whole) inside this window
            assert end == 0
            continue
        answer = QA_EXAMPLES["answers"][example]["text"][0]
        assert CONTEXT[offsets[start][0] : offsets[end][1]] == answer
        found[example] += 1
    assert found[0] >= 1 and found[1] >= 1
    assert sum(features["start_positions"][i] == 0 for i in range(n)) >= 1  # some windows miss the answer
    question_tokens = features["offset_mapping"][0][:7]  # [CLS] who built the bridge ? [SEP]
    assert all(o == NO_OFFSET for o in question_tokens)


def test_eval_features_and_postprocessing_recover_the_answers():
    tokenizer = tiny_qa_tokenizer()
    train = prepare_qa_train_features(QA_EXAMPLES, tokenizer, max_length=20, doc_stride=6)
    features = prepare_qa_eval_features(QA_EXAMPLES, tokenizer, max_length=20, doc_stride=6)
    assert features["input_ids"] == train["input_ids"]
    assert features["offset_mapping"][0][0] is None and features["offset_mapping"][0][1] is None
    # Oracle logits: high at the gold positions of windows that hold the answer, and a tempting score on [CLS].
    start_logits = torch.zeros(len(train["input_ids"]), 20)
    end_logits = torch.zeros_like(start_logits)
    for i, (s, e) in enumerate(zip(train["start_positions"], train["end_positions"])):
        start_logits[i, 0] = end_logits[i, 0] = 50.0
        if s != 0:
            start_logits[i, s] = end_logits[i, e] = 10.0
    predictions = postprocess_qa_predictions(QA_EXAMPLES, features, start_logits.numpy(), end_logits.numpy())
    assert predictions == {"q1": "John Smithson", "q2": "1900"}
    # A span longer than max_answer_length is refused: "John Smithson" is 3 tokens (john smith ##son).
    short = postprocess_qa_predictions(QA_EXAMPLES, features, start_logits.numpy(), end_logits.numpy(),
                                       max_answer_length=2)  # fmt: skip
    assert short["q1"] != "John Smithson"
    with pytest.raises(ValueError, match="one row per window"):
        postprocess_qa_predictions(QA_EXAMPLES, features, start_logits[:-1].numpy(), end_logits[:-1].numpy())


# --- Hub layouts (datasets.load_dataset replaced by in-memory copies) -------------------------------------------


def test_hub_layouts_are_mapped_to_train_validation_test(monkeypatch):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    sst2_features = Features({"idx": Value("int32"), "sentence": Value("string"),
                              "label": ClassLabel(names=["negative", "positive"])})  # fmt: skip
    sst2_rows = lambda n, label: {"idx": list(range(n)), "sentence": [f"s{i}" for i in range(n)], "label": [label] * n}  # noqa: E731
    semeval_features = Features({"sentence": Value("string"), "relation": ClassLabel(names=SEMEVAL2010_TASK8_LABELS)})
    marked = "The <e1>a</e1> of <e2>b</e2>."
    titles = [f"Article_{i}" for i in range(48)]
    squad_rows = [{"id": f"q{i}", "title": t, "context": "In 1850.", "question": "When?",
                   "answers": {"text": ["1850"], "answer_start": [3]}} for i, t in enumerate(titles)]  # fmt: skip
    hub = {
        "stanfordnlp/sst2": DatasetDict({
            "train": Dataset.from_dict(sst2_rows(20, 1), features=sst2_features),
            "validation": Dataset.from_dict(sst2_rows(4, 0), features=sst2_features),
            "test": Dataset.from_dict(sst2_rows(3, -1), features=sst2_features),
        }),
        "SemEvalWorkshop/sem_eval_2010_task_8": DatasetDict({
            "train": Dataset.from_dict({"sentence": [marked] * 20, "relation": [18] * 20}, features=semeval_features),
            "test": Dataset.from_dict({"sentence": [marked] * 3, "relation": [0] * 3}, features=semeval_features),
        }),
        "rajpurkar/squad": Dataset.from_list(squad_rows),
    }  # fmt: skip
    monkeypatch.setattr("datasets.load_dataset", lambda name, split=None: hub[name])

    sst2 = load_sst2(dataset_name="stanfordnlp/sst2")
    assert {s: len(ds) for s, ds in sst2.items()} == {"train": 18, "validation": 2, "test": 4}
    assert sst2["test"]["label"] == [0] * 4  # GLUE validation (labelled) is the test split
    semeval = load_semeval2010_task8(dataset_name="SemEvalWorkshop/sem_eval_2010_task_8")
    assert semeval["validation"]["id"] == ["10", "20"] and semeval["test"]["id"] == ["8001", "8002", "8003"]
    squad = load_squad(dataset_name="rajpurkar/squad")
    assert [len(squad[s]) for s in ("train", "validation", "test")] == [36, 6, 6]
    assert squad["test"]["title"] == [t for t in titles if t in set(squad_article_splits(titles)["test"])]

    squad_rows[5]["answers"]["answer_start"] = [0]
    hub["rajpurkar/squad"] = Dataset.from_list(squad_rows)
    with pytest.raises(SquadFormatError, match=r"rajpurkar/squad \(validation\), question id 'q5'"):
        load_squad(dataset_name="rajpurkar/squad")
