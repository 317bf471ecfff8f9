"""Span feedback: the simulated annotator against seqeval, the record reader's errors, SpanFeedbackReward's per-token
values and alignment, partial-label targets, and a tiny model trained from simulated feedback alone."""

import doctest
import json
import random

import pytest
import torch
from seqeval.metrics import precision_score, recall_score
from seqeval.scheme import IOB2, Entities
from tiny import SYNTH_LABELS, tiny_bert, word_tokenizer
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

import trl_tokenlevel.data.feedback as feedback_module
import trl_tokenlevel.rewards.token.span_feedback as reward_module
from trl_tokenlevel import TokenLevelRLConfig, TokenLevelRLTrainer
from trl_tokenlevel.token_classification.collator import TokenClassificationRLCollator
from trl_tokenlevel.data import prepare_token_classification_dataset
from trl_tokenlevel.data.feedback import (
    FeedbackFormatError,
    accepted_span_targets,
    feedback_dataset,
    partial_label_targets,
    read_feedback_records,
    simulate_feedback,
)
from trl_tokenlevel.metrics import entity_scores
from trl_tokenlevel.rewards import extract_spans
from trl_tokenlevel.rewards.token.span_feedback import SpanFeedbackReward, words_to_positions

NAMES = SYNTH_LABELS  # ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a loaded machine the threads wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("module", [feedback_module, reward_module])
def test_docstring_examples(module):
    result = doctest.testmod(module, extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0, result


# ----------------------------------------------------------------------------- simulated annotator


def seqeval_true_positives(shown, gold):
    predicted = {(e.start, e.end, e.tag) for e in Entities([list(shown)], IOB2).entities[0]}
    return predicted & {(e.start, e.end, e.tag) for e in Entities([list(gold)], IOB2).entities[0]}


ANNOTATOR_CASES = [  # (shown, gold, accepted spans, missed)
    (["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "I-PER", "O", "B-LOC"], {(0, 2, "PER"), (3, 4, "LOC")}, 0),
    (["B-PER", "I-PER", "I-PER", "O"], ["B-PER", "I-PER", "O", "O"], set(), 1),  # right end is wrong
    (["O", "B-PER", "I-PER", "O"], ["B-PER", "I-PER", "I-PER", "O"], set(), 1),  # left boundary is wrong
    (["B-LOC", "O"], ["B-PER", "O"], set(), 1),  # wrong type
    (["I-LOC", "O"], ["B-LOC", "O"], set(), 1),  # stray I- never counts in strict IOB2
    (["B-PER", "B-PER", "O"], ["B-PER", "I-PER", "O"], set(), 1),  # split entity
    (["B-PER", "B-PER", "O"], ["B-PER", "B-PER", "O"], {(0, 1, "PER"), (1, 2, "PER")}, 0),  # adjacent entities
    (["B-PER", "I-LOC", "O"], ["B-PER", "O", "O"], {(0, 1, "PER")}, 0),  # type change ends the entity
    (["O", "O", "O"], ["B-PER", "O", "B-LOC"], set(), 2),
    ([], [], set(), 0),
]


@pytest.mark.parametrize("shown, gold, accepted, missed", ANNOTATOR_CASES)
def test_annotator_accepts_exactly_the_seqeval_true_positives(shown, gold, accepted, missed):
    record = simulate_feedback(shown, gold)
    got = {(e["start"], e["end"], e["type"]) for e in record["feedback"] if e["accepted"]}
    assert got == accepted == seqeval_true_positives(shown, gold)
    assert record["missed"] == missed
    # every shown entity is judged once, stray I- runs included
    assert [(e["start"], e["end"], e["type"]) for e in record["feedback"]] == [
        (s.start, s.end, s.type) for s in extract_spans(shown)
    ]


def test_annotator_matches_seqeval_precision_and_recall_on_random_labellings():
    rng = random.Random(0)
    shown_all, gold_all, accepted, judged_valid, missed = [], [], 0, 0, 0
    for _ in range(400):
        length = rng.randint(0, 9)
        shown, gold = [rng.choice(NAMES) for _ in range(length)], [rng.choice(NAMES) for _ in range(length)]
        record = simulate_feedback(shown, gold)
        assert {(e["start"], e["end"], e["type"]) for e in record["feedback"] if e["accepted"]} == (
            seqeval_true_positives(shown, gold)
        )
        shown_all.append(shown)
        gold_all.append(gold)
        accepted += sum(e["accepted"] for e in record["feedback"])
        judged_valid += sum(s.valid for s in extract_spans(shown))
        missed += record["missed"]
    assert accepted > 50
    assert accepted / judged_valid == pytest.approx(precision_score(gold_all, shown_all, mode="strict", scheme=IOB2))
    recall = recall_score(gold_all, shown_all, mode="strict", scheme=IOB2)
    assert accepted / (accepted + missed) == pytest.approx(recall)


def test_annotator_noise_flips_bits_reproducibly():
    shown = ["B-PER", "O", "B-LOC", "O", "B-PER"] * 40
    gold = ["B-PER", "O", "B-PER", "O", "O"] * 40
    clean = [e["accepted"] for e in simulate_feedback(shown, gold)["feedback"]]
    always_flipped = simulate_feedback(shown, gold, 1.0, random.Random(0))["feedback"]
    assert [e["accepted"] for e in always_flipped] == [not bit for bit in clean]
    noisy = simulate_feedback(shown, gold, 0.1, random.Random(3))
    flips = sum(a != e["accepted"] for a, e in zip(clean, noisy["feedback"]))
    assert 3 <= flips <= 25  # 120 bits at 10%
    assert noisy == simulate_feedback(shown, gold, 0.1, random.Random(3))
    assert noisy["missed"] == simulate_feedback(shown, gold)["missed"]  # the count stays exact
    with pytest.raises(ValueError, match="rng"):
        simulate_feedback(shown, gold, 0.1)
    with pytest.raises(ValueError, match="2 shown tags but 1 gold"):
        simulate_feedback(["O", "O"], ["O"])


# ----------------------------------------------------------------------------- records and the reader

GOOD = {"id": "s1", "tokens": ["John", "Smith", "in", "Paris"], "shown_labels": ["B-PER", "I-PER", "O", "B-LOC"],
        "feedback": [{"start": 0, "end": 2, "type": "PER", "accepted": True},
                     {"start": 3, "end": 4, "type": "LOC", "accepted": False}], "missed": 1}


def with_changes(**changes):
    record = json.loads(json.dumps(GOOD))
    record.update(changes)
    return {k: v for k, v in record.items() if v != "<drop>"}


BAD_RECORDS = [  # (line written as line 3, field named in the error, words of the message)
    ('{"tokens": ["a"], ', "'<record>'", "invalid JSON"),
    (with_changes(feedback="<drop>"), "'feedback'", "missing field"),
    (with_changes(shown_labels=["B-PER", "I-PER", "O", "B-MISC"]), "'shown_labels[3]'", "unknown label 'B-MISC'"),
    (with_changes(feedback=[{"start": 3, "end": 5, "type": "LOC", "accepted": True}]), "'feedback[0].start/end'",
     "not inside the sentence's 4 words"),
    (with_changes(feedback=[{"start": 0, "end": 1, "type": "PER", "accepted": True}]), "'feedback[0]'",
     "no shown entity 'PER' over words [0, 1)"),
    (with_changes(feedback=[{"start": 3, "end": 4, "type": "PER", "accepted": True}]), "'feedback[0]'",
     "the shown entity there is 'LOC'"),
    (with_changes(shown_labels=["B-PER", "I-PER", "O"]), "'shown_labels'", "3 labels for 4 tokens"),
    (with_changes(acepted=True), "'acepted'", "unknown field"),
    (with_changes(feedback=[{"start": 3, "end": 4, "type": "LOC", "accepted": "yes"}]),
     "'feedback[0].accepted'", "'yes'"),
    (with_changes(feedback=GOOD["feedback"] + GOOD["feedback"][:1]), "'feedback[2]'", "second entry"),
    (with_changes(missed=-1), "'missed'", "found -1"),
]


@pytest.mark.parametrize("bad, field, problem", BAD_RECORDS)
def test_reader_errors_name_file_line_and_field(tmp_path, bad, field, problem):
    path = tmp_path / "feedback.jsonl"
    line = bad if isinstance(bad, str) else json.dumps(bad)
    path.write_text(json.dumps(GOOD) + "\n\n" + line + "\n")  # line 2 is blank: lines count from 1 in the file
    with pytest.raises(FeedbackFormatError) as error:
        read_feedback_records(path, NAMES)
    message = str(error.value)
    assert message.startswith(f"{path}, line 3, field {field}:"), message
    assert problem in message and "Fix:" in message


def test_reader_reads_a_folder_in_name_order_and_builds_the_dataset(tmp_path):
    unjudged = {"tokens": ["a", "b", "c"], "shown_labels": ["I-LOC", "O", "B-PER"],
                "feedback": [{"start": 0, "end": 1, "type": "LOC", "accepted": True}]}
    (tmp_path / "b.jsonl").write_text(json.dumps(unjudged) + "\n")
    (tmp_path / "a.jsonl").write_text(json.dumps(GOOD) + "\n")
    (tmp_path / "notes.txt").write_text("not read")
    records = read_feedback_records(tmp_path, NAMES)
    assert [r["id"] for r in records] == ["s1", "b.jsonl:1"]
    assert records[1]["missed"] is None
    dataset = feedback_dataset(records, NAMES)
    assert dataset.features["ner_tags"].feature.names == NAMES
    assert dataset["ner_tags"] == [[1, 2, 0, 3], [4, 0, 1]]  # the shown labelling, not gold
    assert dataset["feedback_word"] == [[1, 1, 0, -1], [1, 0, 0]]  # the unjudged PER entity gets 0
    assert dataset["missed"] == [1, None] and dataset["feedback_bits"] == [2, 1]
    with pytest.raises(FeedbackFormatError, match="record 0, field 'feedback'"):
        feedback_dataset([with_changes(feedback="<drop>")], NAMES)


# ----------------------------------------------------------------------------- the reward


def reward_of(sampled_rows, shown, feedback_word, missed=None, **weights):
    """One sentence `[CLS] words [SEP] [PAD]`: returns the per-word rewards of each sampled row."""
    labels = torch.tensor([[-100] + shown + [-100, -100]])
    sampled = torch.tensor([[[0] + row + [0, 0]] for row in sampled_rows])
    rewards = SpanFeedbackReward(**weights)(
        sampled, labels, labels != -100, NAMES, feedback_word=[feedback_word], missed=[missed]
    )
    assert torch.all(rewards[:, :, [0, -2, -1]] == 0)  # specials and padding never count
    return rewards[:, 0, 1:-2].tolist()


def test_reward_accepted_rejected_boundary_wrong_and_o_tokens():
    # shown: PER accepted | LOC with a wrong right boundary, rejected | O | PER unjudged
    shown = [1, 2, 0, 3, 4, 0, 1]
    feedback_word = [1, 1, 0, -1, -1, 0, 0]
    rows = [
        [1, 2, 0, 3, 4, 0, 1],  # repeats the shown labelling
        [1, 0, 0, 3, 0, 0, 0],  # breaks PER, fixes the LOC boundary
        [3, 4, 1, 0, 0, 0, 1],  # wrong type on PER, drops LOC, an entity on an outside word
    ]
    assert reward_of(rows, shown, feedback_word) == [
        [1.0, 1.0, 0.0, -1.0, -1.0, 0.0, 0.0],
        [1.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0],  # the fixed boundary word earns what the repeat lost
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    ]
    weighted = reward_of(rows, shown, feedback_word, missed=3, accept_weight=2.0, reject_weight=0.5,
                         rejected_alternative_credit=0.25, o_weight=1.0, missed_weight=1.0)
    # two outside words (2 and 5): O there earns 1 - 1 * 3 / 2 = -0.5
    assert weighted == [
        [2.0, 2.0, -0.5, -0.5, -0.5, -0.5, 0.0],
        [2.0, 0.0, -0.5, -0.5, 0.25, -0.5, 0.0],
        [0.0, 0.0, 0.0, 0.25, 0.25, -0.5, 0.0],
    ]
    assert reward_of(rows[:1], shown, feedback_word, missed=None, o_weight=1.0, missed_weight=1.0)[0][2] == 1.0


def test_reward_targets_b_tag_for_an_accepted_stray_inside_run():
    assert reward_of([[4, 0], [3, 0]], [4, 0], [1, 0]) == [[0.0, 0.0], [1.0, 0.0]]


def test_reward_refuses_what_it_cannot_align():
    labels = torch.tensor([[-100, 1, 0, -100]])
    sampled = labels.clamp(min=0).unsqueeze(0)
    reward = SpanFeedbackReward()
    with pytest.raises(ValueError, match="needs the `feedback_word` column"):
        reward(sampled, labels, labels != -100, NAMES)
    with pytest.raises(ValueError, match="2 word positions .* has 3 words"):
        reward(sampled, labels, labels != -100, NAMES, feedback_word=[[1, 0, 0]])
    with pytest.raises(ValueError, match="shown label is 'O'"):
        reward(sampled, labels, labels != -100, NAMES, feedback_word=[[1, 1]])
    with pytest.raises(ValueError, match="`ner_tags` do not match"):
        reward(sampled, labels, labels != -100, NAMES, feedback_word=[[1, 0]], ner_tags=[[3, 0]])
    with pytest.raises(ValueError, match="missed_weight=1.0 needs the `missed` column"):
        SpanFeedbackReward(missed_weight=1.0)(sampled, labels, labels != -100, NAMES, feedback_word=[[1, 0]])


def wordpiece_tokenizer():
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "ab", "##cd", "ef", "gh", "##ij"])}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )


def test_feedback_reaches_the_first_sub_token_of_each_word_through_the_trainer_pipeline():
    records = [
        {"tokens": ["abcd", "ef", "ghij", "ab"], "shown_labels": ["B-PER", "O", "B-LOC", "I-LOC"],
         "feedback": [{"start": 0, "end": 1, "type": "PER", "accepted": True},
                      {"start": 2, "end": 4, "type": "LOC", "accepted": False}]},
        {"tokens": ["ghij", "ef", "abcd", "ef", "ef"], "shown_labels": ["O", "O", "B-PER", "O", "B-LOC"],
         "feedback": [{"start": 2, "end": 3, "type": "PER", "accepted": False},
                      {"start": 4, "end": 5, "type": "LOC", "accepted": True}]},  # word 4 is truncated away
    ]
    tokenizer = wordpiece_tokenizer()
    dataset = prepare_token_classification_dataset(
        feedback_dataset(records, NAMES), tokenizer, max_length=8, remove_columns=False
    )
    batch = TokenClassificationRLCollator(tokenizer)([dataset[0], dataset[1]])
    labels = batch["labels"]
    extras = {k: v for k, v in batch.items() if k not in ("input_ids", "attention_mask", "token_type_ids", "labels")}
    placed = words_to_positions(extras["feedback_word"], labels != -100, extras["num_words_kept"])
    # [CLS] ab ##cd ef gh ##ij ab [SEP] / [CLS] gh ##ij ef ab ##cd ef [SEP] (the last word lost to max_length)
    assert extras["num_words_kept"] == [4, 4]
    assert placed.tolist() == [[0, 1, 0, 0, -1, 0, -1, 0], [0, 0, 0, 0, -1, 0, 0, 0]]
    repeat = labels.clamp(min=0).unsqueeze(0)  # a sample equal to the shown labelling
    rewards = SpanFeedbackReward()(repeat, labels, labels != -100, NAMES, **extras)
    assert rewards.tolist() == [[[0.0, 1.0, 0.0, 0.0, -1.0, 0.0, -1.0, 0.0], [0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0]]]


# ----------------------------------------------------------------------------- non-RL targets

FEEDBACK = [{"start": 0, "end": 2, "type": "PER", "accepted": True},
            {"start": 3, "end": 4, "type": "LOC", "accepted": False}]
SHOWN = ["B-PER", "I-PER", "O", "B-LOC", "O", "I-LOC"]  # the stray I-LOC at word 5 is unjudged


def test_partial_and_accepted_span_targets():
    assert partial_label_targets(SHOWN, FEEDBACK, NAMES) == [1, 2, 0, -100, 0, -100]
    assert partial_label_targets(SHOWN, FEEDBACK, NAMES, outside="ignore") == [1, 2, -100, -100, -100, -100]
    assert accepted_span_targets(SHOWN, FEEDBACK, NAMES) == [1, 2, 0, 0, 0, 0]
    stray = [{"start": 5, "end": 6, "type": "LOC", "accepted": True}]
    assert accepted_span_targets(SHOWN, stray, NAMES)[5] == 3  # accepted stray I-LOC becomes B-LOC
    with pytest.raises(ValueError, match="outside must be"):
        partial_label_targets(SHOWN, FEEDBACK, NAMES, outside="skip")


def test_partial_targets_keep_minus_100_through_alignment_and_ce_training(tmp_path, one_thread):
    import datasets

    targets = partial_label_targets(SHOWN, FEEDBACK, NAMES)
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.Value("int64"))})
    raw = datasets.Dataset.from_dict({"tokens": [["w20", "w21", "w1", "w25", "w2", "w26"]] * 8,
                                      "ner_tags": [targets] * 8}, features=features)
    trainer = TokenLevelRLTrainer(
        tiny_bert(), args=make_config(tmp_path, rl_coef=0.0, max_steps=2), train_dataset=raw,
        processing_class=word_tokenizer(), label_list=NAMES,
    )
    assert trainer.train_dataset[0]["labels"] == [-100, 1, 2, 0, -100, 0, -100, -100]
    trainer.train()
    assert torch.isfinite(torch.tensor(trainer.state.log_history[-1]["train_loss"]))


def test_ce_weights_from_feedback_make_ce_on_the_shown_labels_partial_label_ce(tmp_path, one_thread):
    """`feedback_dataset(ce_weight=True)` + `ce_weight_column`: the CE term on the shown labelling, weighted, is the
    partial-label CE (same sum; the normaliser counts every word), so it can be mixed with the feedback reward."""
    import datasets

    words = ["w20", "w21", "w1", "w25", "w2", "w26"]
    record = {"tokens": words, "shown_labels": SHOWN, "feedback": FEEDBACK}
    weighted = feedback_dataset([record] * 4, NAMES, ce_weight=True)
    assert weighted[0]["ce_weight"] == [1.0, 1.0, 1.0, 0.0, 1.0, 0.0]
    assert "ce_weight" not in feedback_dataset([record], NAMES).column_names  # opt-in: other users' columns unchanged
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.Value("int64"))})
    partial = datasets.Dataset.from_dict({"tokens": [words] * 4, "ner_tags": [partial_label_targets(SHOWN, FEEDBACK, NAMES)] * 4},
                                         features=features)

    def ce_sum(dataset, **config):
        trainer = TokenLevelRLTrainer(tiny_bert(), args=make_config(tmp_path, rl_coef=0.0, **config), train_dataset=dataset,
                                      processing_class=word_tokenizer(), label_list=NAMES)
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
        trainer.model.zero_grad()
        loss = trainer.compute_loss(trainer.model, batch)
        loss.backward()
        grad = trainer.model.classifier.weight.grad.clone()
        words_counted = int((batch["labels"] != -100).sum())
        return loss.item() * words_counted, grad * words_counted

    weighted_sum, weighted_grad = ce_sum(weighted, ce_weight_column="ce_weight")
    partial_sum, partial_grad = ce_sum(partial)
    shown_sum, _ = ce_sum(feedback_dataset([record] * 4, NAMES))  # unweighted: CE on every shown word
    assert weighted_sum == pytest.approx(partial_sum, rel=1e-5) and torch.allclose(weighted_grad, partial_grad, atol=1e-6)
    assert shown_sum > weighted_sum * 1.1  # the rejected and unjudged words' CE is really left out
    with pytest.raises(ValueError, match="ce_weight_column='ce_weight' but the batch has no such column"):
        ce_sum(feedback_dataset([record] * 4, NAMES), ce_weight_column="ce_weight")
    from trl_tokenlevel import TokenClassificationRLConfig

    with pytest.raises(ValueError, match="label_all_tokens=True labels every sub-token"):
        TokenClassificationRLConfig(output_dir=str(tmp_path), report_to="none", ce_weight_column="ce_weight",
                                    label_all_tokens=True)
    # an accepted stray I-LOC run: its right tag is B-LOC, not the shown I-LOC, so that word is left out of CE
    stray = {"tokens": ["w1", "w26"], "shown_labels": ["O", "I-LOC"],
             "feedback": [{"start": 1, "end": 2, "type": "LOC", "accepted": True}]}
    assert partial_label_targets(stray["shown_labels"], stray["feedback"], NAMES) == [0, 3]
    assert feedback_dataset([stray], NAMES, ce_weight=True)[0]["ce_weight"] == [1.0, 0.0]
    # mixed with the feedback reward: a step runs, both terms active
    trainer = TokenLevelRLTrainer(
        tiny_bert(), reward_funcs=[SpanFeedbackReward()], train_dataset=weighted, processing_class=word_tokenizer(),
        label_list=NAMES, args=make_config(tmp_path, ce_coef=1.0, rl_coef=1.0, ce_weight_column="ce_weight", max_steps=1,
                                           num_samples=2, logging_steps=1),
    )
    trainer.train()
    logged = trainer.state.log_history[0]
    assert logged["ce_loss"] > 0 and "rewards/SpanFeedbackReward/mean" in logged


# ----------------------------------------------------------------------------- learning from feedback alone


def make_config(tmp_path, **overrides):
    values = {
        "output_dir": str(tmp_path), "per_device_train_batch_size": 16, "learning_rate": 3e-3, "report_to": "none",
        "use_cpu": True, "save_strategy": "no", "eval_strategy": "no", "disable_tqdm": True, "logging_steps": 1000,
        "seed": 0,
    }
    values.update(overrides)
    return TokenLevelRLConfig(**values)


def single_word_sentence(rng):
    """w20-w24 are always a person, w25-w29 always a location (one word each), w0-w19 are O."""
    words, tags = [], []
    for _ in range(rng.randint(4, 10)):
        draw = rng.random()
        kind = 1 if draw < 0.15 else 3 if draw < 0.3 else 0
        low = {1: 20, 3: 25, 0: 0}[kind]
        words.append(f"w{rng.randint(low, low + (19 if kind == 0 else 4))}")
        tags.append(NAMES[kind])
    return words, tags


@torch.no_grad()
def model_labels(model, tokenizer, sentences, generator=None):
    """The model's labelling of each sentence: argmax, or a sample from the policy when `generator` is given."""
    model.eval()
    encoding = tokenizer(sentences, is_split_into_words=True, padding=True, return_tensors="pt")
    logits = model(input_ids=encoding["input_ids"], attention_mask=encoding["attention_mask"]).logits
    if generator is None:
        ids = logits.argmax(-1)
    else:
        ids = torch.multinomial(logits.softmax(-1).flatten(0, 1), 1, generator=generator).view(logits.shape[:2])
    labellings = []
    for b, words in enumerate(sentences):
        first = {}
        for position, word in enumerate(encoding.word_ids(b)):
            if word is not None:
                first.setdefault(word, position)
        labellings.append([NAMES[int(ids[b, first[w]])] for w in range(len(words))])
    return labellings


def test_tiny_model_learns_from_simulated_feedback_alone(tmp_path, one_thread, seed=0):
    """Rounds of: the model labels new sentences, the simulated annotator judges them, the model trains on the bits
    with `ce_coef=0`. No gold label reaches the trainer. Chance (the random model's F1) is 0.1-0.25."""
    rng, generator = random.Random(seed), torch.Generator().manual_seed(seed)
    test = [single_word_sentence(rng) for _ in range(100)]
    model, tokenizer = tiny_bert(seed=seed), word_tokenizer()

    def test_f1():
        return entity_scores([g for _, g in test], model_labels(model, tokenizer, [w for w, _ in test]))["f1"]

    before, bits = test_f1(), 0
    for round_index in range(6):
        stream = [single_word_sentence(rng) for _ in range(128)]
        # Exploration: the shown labelling is a sample from the policy, not its argmax.
        shown = model_labels(model, tokenizer, [w for w, _ in stream], generator)
        records = [dict(simulate_feedback(s, gold), tokens=words) for (words, gold), s in zip(stream, shown)]
        dataset = feedback_dataset(records, NAMES)  # the only labels in it are the shown ones
        bits += sum(dataset["feedback_bits"])
        args = make_config(tmp_path, ce_coef=0.0, num_samples=4, num_train_epochs=2, entropy_coef=0.05,
                           seed=seed + round_index)
        trainer = TokenLevelRLTrainer(model, reward_funcs=[SpanFeedbackReward(reject_weight=0.3)], args=args,
                                      train_dataset=dataset, processing_class=tokenizer)
        trainer.train()
    after = test_f1()
    assert bits > 1000
    assert after > 0.6 and after > before + 0.4, (before, after)  # seeds 0-5 end at 0.71-0.97
