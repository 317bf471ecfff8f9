"""Multi30k (parallel text) and SAMSum next-turn loaders: hand-made files, bad input, Hub layouts, the real data."""

import doctest
import json
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict

import trl_tokenlevel.data.dialogue as dialogue
import trl_tokenlevel.data.multi30k as multi30k
from trl_tokenlevel.data.dialogue import DialogueFormatError, load_samsum_turns, next_turn_examples, parse_turns
from trl_tokenlevel.data.multi30k import load_multi30k, read_parallel_files, translation_prompt


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_multi30k = pytest.mark.skipif(not (SHARED / "multi30k").is_dir(), reason="../shared/data/multi30k not found")
needs_samsum = pytest.mark.skipif(not (SHARED / "samsum").is_dir(), reason="../shared/data/samsum not found")


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def multi30k_folder(tmp_path: Path) -> Path:
    pairs = {
        "train": (["A dog runs.", "Tom &amp; Jerry."], ["Ein Hund rennt.", "Tom &amp; Jerry."]),
        "val": (["A cat."], ["Eine Katze."]),
        "test_2016_flickr": (["Two men.", "A boy.", "A girl."], ["Zwei Männer.", "Ein Junge.", "Ein Mädchen."]),
    }
    for stem, (en, de) in pairs.items():
        write(tmp_path / f"{stem}.en", en)
        write(tmp_path / f"{stem}.de", de)
    return tmp_path


@pytest.mark.parametrize("module", [multi30k, dialogue])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0, result


def test_load_multi30k_from_a_folder_both_directions_and_limits(tmp_path):
    folder = multi30k_folder(tmp_path)
    data = load_multi30k(folder)
    assert {k: len(v) for k, v in data.items()} == {"train": 2, "validation": 1, "test": 3}
    assert data["train"].column_names == ["source", "target"]
    assert data["train"][1] == {"source": "Tom & Jerry.", "target": "Tom & Jerry."}  # HTML entity unescaped
    assert load_multi30k(folder, unescape_html=False)["train"][1]["source"] == "Tom &amp; Jerry."
    assert data["test"][1] == {"source": "A boy.", "target": "Ein Junge."}
    reverse = load_multi30k(folder, source_lang="de", target_lang="en", max_train_samples=1, max_eval_samples=2)
    assert reverse["train"]["source"] == ["Ein Hund rennt."] and len(reverse["test"]) == 2
    with pytest.raises(ValueError, match="Unknown language code 'xx'"):
        load_multi30k(folder, target_lang="xx")


def test_unequal_line_counts_name_both_files_and_the_line(tmp_path):
    folder = multi30k_folder(tmp_path)
    write(folder / "val.de", ["Eine Katze.", "Ein Hund."])
    expected = r"val\.en has 1 lines but .*val\.de has 2; line 2 of .*val\.de has no counterpart"
    with pytest.raises(ValueError, match=expected):
        load_multi30k(folder)


@pytest.mark.parametrize("side", ["en", "de"])
def test_empty_line_names_file_and_line(tmp_path, side):
    folder = multi30k_folder(tmp_path)
    lines = {"en": ["Two men.", "  ", "A girl."], "de": ["Zwei Männer.", "", "Ein Mädchen."]}
    write(folder / f"test_2016_flickr.{side}", lines[side])
    with pytest.raises(ValueError, match=rf"test_2016_flickr\.{side}:2: empty line"):
        load_multi30k(folder)


def test_missing_file_says_where_and_how(tmp_path):
    folder = multi30k_folder(tmp_path)
    (folder / "train.de").unlink()
    with pytest.raises(FileNotFoundError, match=r"train\.de: file not found.*bentrevett/multi30k"):
        load_multi30k(folder)
    with pytest.raises(FileNotFoundError):
        read_parallel_files(folder / "nope.en", folder / "nope.de")


def test_hub_layout_is_mapped_to_source_target(monkeypatch):
    def fake_load_dataset(name, **kwargs):
        assert name == "bentrevett/multi30k"
        rows = {"en": ["A dog."], "de": ["Ein Hund."]}
        return DatasetDict({s: Dataset.from_dict(rows) for s in ("train", "validation", "test")})

    monkeypatch.setattr(multi30k.datasets, "load_dataset", fake_load_dataset)
    data = load_multi30k(dataset_name="bentrevett/multi30k")
    assert data["test"][0] == {"source": "A dog.", "target": "Ein Hund."}
    with pytest.raises(ValueError, match=r"lacks the language column\(s\) \['fr'\]"):
        load_multi30k(dataset_name="bentrevett/multi30k", target_lang="fr")


def test_translation_prompt_chat_and_plain():
    [message] = translation_prompt("A dog runs.")
    assert message["role"] == "user"
    assert message["content"].startswith("Translate this English sentence into German.")
    assert message["content"].endswith("\n\nA dog runs.")
    assert "into English" in translation_prompt("Ein Hund.", "de", "en")[0]["content"]
    assert translation_prompt("A dog runs.", chat=False) == "A dog runs."
    with pytest.raises(ValueError, match="chat=False"):
        translation_prompt("A dog runs.", prefix="translate English to German: ")


@needs_multi30k
def test_shared_folder_found_from_another_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not next to shared/: falls back to the package's repository root
    assert multi30k.find_shared_data_dir("multi30k") == (SHARED / "multi30k").resolve()
    assert multi30k.find_shared_data_dir("no-such-dataset") is None


@needs_multi30k
def test_real_multi30k_counts_and_first_test_pair():
    data = load_multi30k()
    assert {k: len(v) for k, v in data.items()} == {"train": 29000, "validation": 1014, "test": 1000}
    assert data["test"][0] == {
        "source": "A man in an orange hat starring at something.",
        "target": "Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.",
    }
    assert not any("&amp;" in s for s in data["train"]["source"])


def samsum_file(tmp_path: Path, dialogues: list[str], split: str = "validation") -> Path:
    rows = [json.dumps({"context": d, "response": "summary"}) for d in dialogues]
    write(tmp_path / f"{split}.jsonl", rows)
    return tmp_path


def test_parse_turns_variants_seen_in_samsum():
    text = "Amanda: Hi\r\nJUAN : WELL\r\nSimon:8 sharp\r\n\r\nBob:  <file_photo>\r\nAnn: at 3:00 PM"
    assert parse_turns(text, "x") == [
        ("Amanda", "Hi"), ("JUAN", "WELL"), ("Simon", "8 sharp"), ("Bob", "<file_photo>"), ("Ann", "at 3:00 PM"),
    ]


def test_next_turn_examples_roles_counts_and_context_limit():
    turns = [("Ann", "Hi"), ("Bob", "Hey"), ("Cid", "Yo"), ("Ann", "Lunch?"), ("Ann", "At noon")]
    rows = next_turn_examples(turns, "d1")
    assert len(rows) == len(turns) - 1 and [r["turn_index"] for r in rows] == [1, 2, 3, 4]
    last = rows[-1]
    assert last["speaker"] == "Ann" and last["reference"] == "At noon"
    assert last["prompt"] == [
        {"role": "system", "content": "You are Ann in a chat conversation. Reply with Ann's next message only."},
        {"role": "assistant", "content": "Hi"},
        {"role": "user", "content": "Bob: Hey"},
        {"role": "user", "content": "Cid: Yo"},
        {"role": "assistant", "content": "Lunch?"},
    ]
    assert last["context"] == "Ann: Hi\nBob: Hey\nCid: Yo\nAnn: Lunch?"
    assert rows[0]["prompt"][1] == {"role": "user", "content": "Ann: Hi"}  # Bob plays: Ann is a user
    short = next_turn_examples(turns, "d1", max_context_turns=2)[-1]
    assert short["prompt"][1:] == [{"role": "user", "content": "Cid: Yo"}, {"role": "assistant", "content": "Lunch?"}]
    merged = next_turn_examples(turns, "d1", merge_consecutive=True)[-1]["prompt"]
    assert [m["role"] for m in merged] == ["system", "assistant", "user", "assistant"]
    assert merged[2]["content"] == "Bob: Hey\nCid: Yo"
    with pytest.raises(ValueError, match="max_context_turns"):
        next_turn_examples(turns, "d1", max_context_turns=0)


def test_load_samsum_turns_from_a_file(tmp_path):
    folder = samsum_file(tmp_path, ["A: hi\r\nB: hello\r\nA: bye", "C: one\nD: two"])
    data = load_samsum_turns(folder)
    assert len(data) == 2 + 1
    assert data["dialogue_id"] == ["validation-1", "validation-1", "validation-2"]
    assert data["reference"] == ["hello", "bye", "two"] and data["speaker"] == ["B", "A", "D"]
    assert len(load_samsum_turns(folder, max_dialogues=1)) == 2


def test_turn_without_speaker_names_file_line_and_turn(tmp_path):
    folder = samsum_file(tmp_path, ["A: hi\nB: hello", "A: hi\nno speaker here\nB: ok"])
    expected = r"validation\.jsonl:2: turn 2 of the dialogue has no 'Speaker: ' prefix"
    with pytest.raises(DialogueFormatError, match=expected):
        load_samsum_turns(folder)
    skipped = load_samsum_turns(folder, malformed_turns="skip")
    assert skipped["reference"] == ["hello", "ok"] and skipped[1]["context"] == "A: hi"
    samsum_file(tmp_path, ["A: hi\nB:   "])
    with pytest.raises(DialogueFormatError, match=r"validation\.jsonl:1: turn 2 .* no text"):
        load_samsum_turns(folder)
    write(tmp_path / "validation.jsonl", ['{"response": "x"}'])
    with pytest.raises(DialogueFormatError, match=r"validation\.jsonl:1: no string field 'context'"):
        load_samsum_turns(folder)
    with pytest.raises(FileNotFoundError, match="train.jsonl: file not found.*Samsung/samsum"):
        load_samsum_turns(folder, split="train")


def test_samsum_hub_layout(monkeypatch):
    def fake_load_dataset(name, split):
        rows = {"id": ["13818513"], "dialogue": ["Amanda: cookies?\r\nJerry: Sure!"], "summary": ["s"]}
        return Dataset.from_dict(rows)

    monkeypatch.setattr(dialogue.datasets, "load_dataset", fake_load_dataset)
    data = load_samsum_turns(dataset_name="Samsung/samsum", split="train")
    assert data[0]["dialogue_id"] == "13818513" and data[0]["reference"] == "Sure!"


@needs_samsum
def test_real_samsum_counts_and_the_malformed_test_line():
    assert len(load_samsum_turns(split="validation")) == 8860 - 818
    with pytest.raises(DialogueFormatError, match=r"test\.jsonl:582: turn 4"):
        load_samsum_turns(split="test")
    assert len(load_samsum_turns(split="test", malformed_turns="skip")) == 9212 - 1 - 819
