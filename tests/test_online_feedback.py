"""learn_online on the token path keeps the dataset's other columns (span feedback reaches SpanFeedbackReward) and
refuses rows whose columns differ (tiny BERT)."""

import random

import pytest
import torch
from tiny import SYNTH_LABELS, synthetic_sentence, tiny_bert, word_tokenizer

from trl_tokenlevel import TokenClassificationRLConfig, TokenLevelRLTrainer
from trl_tokenlevel.data.feedback import feedback_dataset, simulate_feedback
from trl_tokenlevel.rewards import SpanFeedbackReward


class RecordingFeedbackReward(SpanFeedbackReward):
    """SpanFeedbackReward that remembers the `id` and `feedback_word` columns of every batch it scores."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen: list[tuple[list, list]] = []

    def __call__(self, sampled_labels, gold_labels, word_mask, label_names, **kwargs):
        self.seen.append((list(kwargs["id"]), list(kwargs["feedback_word"])))
        return super().__call__(sampled_labels, gold_labels, word_mask, label_names, **kwargs)


def feedback_rows(n, seed, ce_weight=False):
    """Feedback records on a shown labelling that moves some gold entities one word right (those get rejected)."""
    rng, records = random.Random(seed), []
    for index in range(n):
        words, tags = synthetic_sentence(rng)
        gold = [SYNTH_LABELS[t] for t in tags]
        shown = [gold[-1]] + gold[:-1] if index % 3 == 0 else gold
        records.append(dict(simulate_feedback(shown, gold), tokens=words, id=f"s{seed}-{index}"))
    return [dict(row) for row in feedback_dataset(records, SYNTH_LABELS, ce_weight=ce_weight)]


def online_trainer(tmp_path, reward, **overrides):
    args = TokenClassificationRLConfig(**{
        "output_dir": str(tmp_path), "use_cpu": True, "report_to": "none", "save_strategy": "no", "disable_tqdm": True,
        "ce_coef": 0.0, "num_samples": 2, "learning_rate": 3e-3, "online_batch_size": 4, "replay_buffer_size": 8,
        "replay_batch_size": 2, "logging_steps": 1, "seed": 0, **overrides,
    })
    return TokenLevelRLTrainer(tiny_bert(seed=0), reward_funcs=[reward], args=args, processing_class=word_tokenizer(),
                               label_list=SYNTH_LABELS)


def test_online_features_keep_every_column_and_add_the_word_counts(tmp_path):
    trainer = online_trainer(tmp_path, SpanFeedbackReward())
    row = feedback_rows(1, seed=1)[0]
    (feature,) = trainer.online_features([row])
    for key, value in row.items():
        assert feature[key] == value, key  # feedback_word, missed, id, tokens, ner_tags: all kept unchanged
    assert feature["num_words_kept"] == feature["num_words"] == len(row["tokens"])
    assert feature["labels"] == [-100] + row["ner_tags"] + [-100]
    assert trainer.online_features([feature]) == [feature]  # tokenized rows pass through


def test_learn_online_gives_the_reward_each_rows_own_feedback(tmp_path):
    reward = RecordingFeedbackReward()
    trainer = online_trainer(tmp_path, reward)
    stream, seed = feedback_rows(16, seed=2), feedback_rows(8, seed=3)
    start = trainer.model.classifier.weight.detach().clone()
    trainer.learn_online(stream, seed_examples=seed)
    assert trainer.state.global_step == 4 and len(reward.seen) == 4
    by_id = {row["id"]: row["feedback_word"] for row in stream + seed}
    for ids, feedback_word in reward.seen:
        assert len(ids) == 6  # 4 new + 2 replayed
        assert [by_id[i] for i in ids] == feedback_word
    assert any(i.startswith("s3-") for ids, _ in reward.seen for i in ids)  # seed rows were replayed
    assert not torch.equal(trainer.model.classifier.weight, start)


def test_rows_with_different_columns_are_refused_naming_the_row_and_columns(tmp_path):
    trainer = online_trainer(tmp_path, SpanFeedbackReward())
    stream = feedback_rows(8, seed=4)
    gold_only = [{"id": r["id"], "tokens": r["tokens"], "ner_tags": r["ner_tags"]} for r in feedback_rows(8, seed=5)]
    with pytest.raises(ValueError) as error:
        trainer.learn_online(stream, seed_examples=gold_only)
    message = str(error.value)
    assert "Online example 4 (new examples first, then replayed ones)" in message
    assert "only in 0: ['feedback_bits', 'feedback_word', 'missed']" in message
    mixed = stream[:2] + [{k: v for k, v in stream[2].items() if k != "missed"}]
    with pytest.raises(ValueError, match=r"Online example 2 \(in the order given\).*only in 0: \['missed'\]"):
        trainer.online_features(mixed)


def test_learn_online_applies_the_partial_label_ce_weights_of_each_row(tmp_path):
    """The docs' recommended mix (`ce_weight=True` rows, `ce_weight_column`): the per-word weights travel with each row
    through the online loop. CE only (policy gradient off): with every weight 0 nothing moves; with the feedback's
    weights CE trains, and changing the shown tags under weight-0 words changes nothing (they are out of the loss);
    with the policy gradient on as well, the loop runs."""
    def run(case, **overrides):
        stream, seed = feedback_rows(16, seed=6, ce_weight=True), feedback_rows(8, seed=7, ce_weight=True)
        for row in stream + seed:
            if case == "zero":
                row["ce_weight"] = [0.0] * len(row["ce_weight"])
            elif case == "retagged":  # another tag wherever the weight is 0
                row["ner_tags"] = [(t + 1) % len(SYNTH_LABELS) if w == 0.0 else t
                                   for t, w in zip(row["ner_tags"], row["ce_weight"])]
        trainer = online_trainer(tmp_path / case, SpanFeedbackReward(), **{
            "rl_coef": 0.0, "ce_coef": 1.0, "ce_weight_column": "ce_weight", **overrides})
        start = trainer.model.classifier.weight.detach().clone()
        trainer.learn_online(stream, seed_examples=seed)
        assert trainer.state.global_step == 4
        return stream, trainer.model.classifier.weight.detach() - start

    _, zero = run("zero")
    stream, feedback = run("feedback")
    assert any(0.0 in row["ce_weight"] for row in stream) and any(1.0 in row["ce_weight"] for row in stream)
    _, retagged = run("retagged")
    assert zero.abs().max().item() == 0.0 and feedback.abs().max().item() > 1e-4
    assert torch.equal(retagged, feedback)
    _, mixed = run("mixed", rl_coef=1.0)
    assert not torch.equal(mixed, feedback)  # the policy gradient adds its own update
