"""Extractive QA: the span math on hand-made tensors, and QuestionAnsweringRLTrainer on a tiny random
BertForQuestionAnswering (from a config) with a tiny WordPiece tokenizer (no downloads).

The span-F1 reward against the official F1 is pinned in tests/test_rewards_encoder_tasks.py; the feature windows and
the post-processing in tests/test_data_encoder_tasks.py.
"""

import random

import datasets
import pytest
import torch
from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    BertConfig,
    BertForQuestionAnswering,
    BertTokenizer,
    pipeline,
)
from transformers.pipelines import REMOVED_TASKS

import trl_tokenlevel.question_answering.trainer as qa_trainer_module
from tiny import assert_same_update, fixed_gumbel, perturb
from trl_tokenlevel import QuestionAnsweringRLConfig, QuestionAnsweringRLTrainer, TokenLevelRLConfig, TokenLevelRLTrainer
from trl_tokenlevel.data.squad import SquadFormatError
from trl_tokenlevel.question_answering import answer_questions, context_kl, sample_spans, span_cross_entropy
from trl_tokenlevel.question_answering.spans import SpanSample, end_log_probs, start_log_probs


SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [f"w{i}" for i in range(30)]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run ~10x faster on one thread when the 2 cores are shared (no thread contention)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def qa_tokenizer() -> BertTokenizer:
    """A fast uncased WordPiece tokenizer over w0..w29 (one token per word), built offline."""
    return BertTokenizer(vocab={token: i for i, token in enumerate(SPECIALS + WORDS)})


def tiny_qa_bert(seed: int = 0) -> BertForQuestionAnswering:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(SPECIALS) + len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    )
    return BertForQuestionAnswering(config)


def synthetic_squad(num_examples: int, seed: int = 0, long: bool = False) -> datasets.Dataset:
    """Contexts of filler words w10..w29 holding one answer of 1-2 words from w0..w4; the question is "w5 w6".
    `long` contexts (20-30 words) are cut into several windows by a short max_length."""
    rng = random.Random(seed)
    rows = []
    for i in range(num_examples):
        words = [f"w{rng.randint(10, 29)}" for _ in range(rng.randint(20, 30) if long else rng.randint(6, 12))]
        answer = [f"w{rng.randint(0, 4)}" for _ in range(rng.randint(1, 2))]
        at = rng.randint(0, len(words))
        words[at:at] = answer
        context = " ".join(words)
        start = len(" ".join(words[:at])) + (1 if at else 0)
        rows.append({"id": f"q{i}", "question": "w5 w6", "context": context,
                     "answers": {"text": [" ".join(answer)], "answer_start": [start]}})  # fmt: skip
    return datasets.Dataset.from_list(rows)


def make_config(tmp_path, cls=QuestionAnsweringRLConfig, **overrides):
    values = dict(
        output_dir=str(tmp_path), per_device_train_batch_size=32, learning_rate=3e-3, logging_steps=4, max_length=48,
        doc_stride=8, report_to="none", use_cpu=True, save_strategy="no", eval_strategy="no", disable_tqdm=True, seed=0,
    )
    values.update(overrides)
    return cls(**values)


def make_trainer(tmp_path, train=None, model=None, **overrides):
    return TokenLevelRLTrainer(
        model=model or tiny_qa_bert(), reward_funcs=overrides.pop("reward_funcs", None), args=make_config(tmp_path, **overrides),
        train_dataset=train if train is not None else synthetic_squad(256), eval_dataset=synthetic_squad(64, seed=1),
        processing_class=qa_tokenizer(),
    )


# --- pure functions ---------------------------------------------------------------------------------------------


def test_span_cross_entropy_ignores_padding_and_matches_the_model_loss():
    start, end = torch.randn(3, 6), torch.randn(3, 6)
    gold_start, gold_end = torch.tensor([1, 0, 4]), torch.tensor([2, 0, 5])
    expected = (torch.nn.functional.cross_entropy(start, gold_start, reduction="none")
                + torch.nn.functional.cross_entropy(end, gold_end, reduction="none")) / 2  # fmt: skip
    torch.testing.assert_close(span_cross_entropy(start, end, gold_start, gold_end), expected)
    padded = torch.cat([start, torch.full((3, 2), 9.0)], 1), torch.cat([end, torch.full((3, 2), 9.0)], 1)
    mask = torch.cat([torch.ones(3, 6), torch.zeros(3, 2)], 1)
    torch.testing.assert_close(span_cross_entropy(*padded, gold_start, gold_end, mask), expected)


def test_context_kl_is_zero_for_equal_heads_and_positive_otherwise():
    context = torch.tensor([[False, True, True, True]])
    logits = torch.tensor([[9.0, 1.0, 2.0, 3.0]])
    assert context_kl(logits, logits + torch.tensor([[5.0, 1.0, 1.0, 1.0]]), context).item() == pytest.approx(0.0, abs=1e-6)
    p = torch.softmax(torch.tensor([1.0, 2.0, 3.0]), 0)
    q = torch.softmax(torch.tensor([3.0, 2.0, 1.0]), 0)
    expected = float((p * (p.log() - q.log())).sum())
    assert context_kl(logits, torch.tensor([[0.0, 3.0, 2.0, 1.0]]), context).item() == pytest.approx(expected, rel=1e-5)


# --- the trainer ------------------------------------------------------------------------------------------------


def test_entry_point_dispatches_and_raw_examples_become_windows(tmp_path):
    trainer = make_trainer(tmp_path, train=synthetic_squad(16, long=True), max_length=24, doc_stride=6)
    assert type(trainer) is QuestionAnsweringRLTrainer
    windows = trainer.train_dataset
    assert len(windows) > 16  # long contexts were cut into several windows
    assert {"input_ids", "start_positions", "offset_mapping", "context", "answers", "example_id"} <= set(windows.column_names)
    batch = trainer.data_collator([windows[i] for i in range(4)])
    assert batch["input_ids"].shape == batch["offset_mapping"].shape[:2] and isinstance(batch["context"], list)
    # windows whose answer lies inside target it; the others target [CLS] (position 0)
    for window in windows:
        start, end = window["start_positions"], window["end_positions"]
        if start:
            text = window["context"][window["offset_mapping"][start][0] : window["offset_mapping"][end][1]]
            assert text == window["answers"]["text"][0]
    assert any(w["start_positions"] == 0 for w in windows) and any(w["start_positions"] > 0 for w in windows)


def test_learns_extraction_from_rewards_alone(tmp_path):
    trainer = make_trainer(tmp_path, train=synthetic_squad(128), ce_coef=0.0, num_train_epochs=4, num_samples=4,
                           per_device_train_batch_size=16, learning_rate=5e-3)  # fmt: skip
    before = trainer.evaluate()
    start = {k: v.clone() for k, v in trainer.model.named_parameters()}
    trainer.train()
    after = trainer.evaluate()
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert logs[-1]["reward"] > logs[0]["reward"] + 0.4, (logs[0]["reward"], logs[-1]["reward"])
    assert before["eval_f1"] < 30 and after["eval_f1"] > 85, (before, after)
    assert after["eval_exact_match"] > 60, after
    changed = [k for k, v in trainer.model.named_parameters() if not torch.equal(v, start[k])]
    assert "qa_outputs.weight" in changed and len(changed) > 10
    for key in ("rewards/SpanF1Reward/mean", "reward_greedy", "advantages/mean", "advantages/std", "ce_loss", "entropy"):
        assert key in logs[-1], key


def test_sampled_spans_stay_in_the_context_with_end_not_before_start(tmp_path, monkeypatch):
    seen = []

    def spy(start_logits, end_logits, context_mask, num_samples, temperature=1.0, max_answer_length=30, generator=None):
        sample = sample_spans(start_logits, end_logits, context_mask, num_samples, temperature, max_answer_length, generator)
        seen.append((sample, context_mask.clone(), max_answer_length))
        return sample

    monkeypatch.setattr(qa_trainer_module, "sample_spans", spy)
    # flat start logits and a random end head: every context token is a likely start, ends spread out
    trainer = make_trainer(tmp_path, train=synthetic_squad(64, long=True), max_length=24, doc_stride=6, max_steps=4,
                           num_samples=16, max_answer_length=3, temperature=3.0)  # fmt: skip
    trainer.train()
    assert len(seen) == 4
    spans = 0
    for sample, context, longest in seen:
        rows = torch.arange(context.shape[0]).expand_as(sample.starts)
        assert context[rows, sample.starts].all() and context[rows, sample.ends].all()
        assert (sample.ends >= sample.starts).all() and (sample.ends - sample.starts < longest).all()
        spans += sample.starts.numel()
    assert spans > 1000
    lengths = torch.cat([(s.ends - s.starts).flatten() for s, _, _ in seen])
    assert set(lengths.tolist()) == {0, 1, 2}  # the constraint binds: every allowed length occurs, no longer one


def _deterministic_spans(start_logits, end_logits, context_mask, num_samples, temperature=1.0, max_answer_length=30,
                         generator=None):  # fmt: skip
    """Gumbel-max sampling with noise fixed per (sample, position): identical however the batch is split."""
    gumbel = fixed_gumbel(2, num_samples, 1, 64)
    length = start_logits.shape[1]
    start_lp = start_log_probs(start_logits, context_mask, temperature)  # (B, T)
    starts = (start_lp.unsqueeze(0) + gumbel[0, :, :, :length]).argmax(-1)  # (K, B)
    end_lp = end_log_probs(end_logits, context_mask, starts, temperature, max_answer_length)  # (K, B, T)
    ends = (end_lp + gumbel[1, :, :, :length]).argmax(-1)
    return SpanSample(starts, ends, start_lp.gather(-1, starts.T).T, end_lp.gather(-1, ends.unsqueeze(-1)).squeeze(-1))


@pytest.mark.parametrize("kl_coef", [0.0, 0.1])
def test_gradient_accumulation_invariance(tmp_path, monkeypatch, kl_coef):
    """1 micro-batch of 8 windows and 2 of 4 give the same loss and the same SGD update (windows of different lengths,
    so the two splits pad differently; some windows lack the answer). For the KL arm the policy is first moved away
    from its frozen reference, so the KL term has a gradient to get wrong."""
    monkeypatch.setattr(qa_trainer_module, "sample_spans", _deterministic_spans)
    train = make_trainer(tmp_path / "windows", train=synthetic_squad(6, seed=3, long=True), max_length=28,
                         doc_stride=8).train_dataset  # fmt: skip
    # in order (sequential sampling): the first micro-batch of 4 holds only short windows, so the 2x4 split pads
    # to fewer tokens than the 1x8 batch
    by_length = sorted(range(len(train)), key=lambda i: len(train[i]["input_ids"]))
    train = train.select(by_length[:4] + by_length[-4:])
    lengths = [len(ids) for ids in train["input_ids"]]
    assert max(lengths[:4]) < max(lengths[4:]) and 0 < sum(w["start_positions"] == 0 for w in train) < 8
    results = []
    for batch_size, accumulation in ((8, 1), (4, 2)):
        trainer = make_trainer(
            tmp_path / f"{batch_size}x{accumulation}", train=train, per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=accumulation, max_steps=1, optim="sgd", learning_rate=1.0,
            lr_scheduler_type="constant", disable_dropout=True, logging_steps=1, kl_coef=kl_coef, entropy_coef=0.01,
            max_grad_norm=0.0, num_samples=3, ce_coef=0.5, max_length=28, doc_stride=8,
            train_sampling_strategy="sequential",
        )
        if kl_coef:
            perturb(trainer.model)
        trainer.train()
        results.append((trainer.state.log_history[0], {k: v.detach().clone() for k, v in trainer.model.named_parameters()}))
    (log_a, _), (log_b, _) = results
    assert log_a["ce_loss"] == pytest.approx(log_b["ce_loss"], rel=1e-5)
    answerable = sum(w["start_positions"] > 0 for w in train) / 8  # the others take CE to [CLS] but no PG term
    assert log_a["answerable_windows"] == pytest.approx(answerable) == log_b["answerable_windows"]
    assert_same_update(results, tiny_qa_bert().state_dict(), kl_coef)


def test_bad_answer_offset_names_the_question(tmp_path):
    train = synthetic_squad(8).to_list()
    train[5]["answers"]["answer_start"] = [train[5]["answers"]["answer_start"][0] + 1]
    with pytest.raises(SquadFormatError, match=r"train_dataset, question id 'q5'.*Fix:"):
        make_trainer(tmp_path, train=datasets.Dataset.from_list(train))
    with pytest.raises(ValueError, match=r"lacks the columns \['answers'\]"):
        make_trainer(tmp_path, train=synthetic_squad(8).remove_columns("answers"))


def test_peft_question_answering_task_type_is_refused(tmp_path):
    from peft import LoraConfig

    with pytest.raises(ValueError, match="ignores token_type_ids.*modules_to_save=\\['qa_outputs'\\]"):
        TokenLevelRLTrainer(model=tiny_qa_bert(), reward_funcs=None, args=make_config(tmp_path),
                            train_dataset=synthetic_squad(4), processing_class=qa_tokenizer(),
                            peft_config=LoraConfig(task_type="QUESTION_ANS", target_modules=["query"]))  # fmt: skip


def test_union_config_refuses_other_paths_fields(tmp_path):
    args = make_config(tmp_path, cls=TokenLevelRLConfig, label_all_tokens=True)
    with pytest.raises(ValueError, match="label_all_tokens=True is a setting of TokenClassificationRLTrainer"):
        TokenLevelRLTrainer(model=tiny_qa_bert(), reward_funcs=None, args=args, train_dataset=synthetic_squad(4),
                            processing_class=qa_tokenizer())  # fmt: skip
    with pytest.raises(ValueError, match="doc_stride=48 must be"):
        make_config(tmp_path, doc_stride=48)


def test_saved_model_answers_like_the_trainer(tmp_path):
    """The saved folder reloads with AutoModelForQuestionAnswering and answers as the trainer's own predict(); where
    transformers still has the "question-answering" pipeline (it was removed in v5), the pipeline answers the same."""
    trainer = make_trainer(tmp_path, train=synthetic_squad(128), num_train_epochs=3, rl_coef=0.5,
                           per_device_train_batch_size=16, learning_rate=5e-3)  # fmt: skip
    trainer.train()
    trainer.save_model(str(tmp_path / "saved"))
    examples = synthetic_squad(12, seed=5)
    prediction = trainer.predict(examples)
    assert prediction.metrics["test_f1"] > 80  # a model that answers, not a random one
    model = AutoModelForQuestionAnswering.from_pretrained(tmp_path / "saved")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "saved")
    args = trainer.args
    answers = answer_questions(model, tokenizer, examples, args.max_length, args.doc_stride, args.max_answer_length)
    assert answers == prediction.predictions
    assert "pipeline_tag: question-answering" in (tmp_path / "saved" / "README.md").read_text()
    if "question-answering" in REMOVED_TASKS:
        return
    qa = pipeline("question-answering", model=str(tmp_path / "saved"), device="cpu")
    for example in examples:
        answer = qa(question=example["question"], context=example["context"], max_answer_len=30, align_to_words=False)
        assert answer["answer"] == prediction.predictions[example["id"]], example["id"]
