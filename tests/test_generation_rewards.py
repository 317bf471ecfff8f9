"""Built-in completion rewards on real (tiny) tokenizers and tiny random reward models."""

import pytest
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import BertConfig, BertForTokenClassification, LlamaConfig, LlamaForSequenceClassification, PreTrainedTokenizerFast

from tiny_lm import lm_tokenizer
from trl_tokenlevel.metrics.text import rouge_l, rouge_n, rouge_scores
from trl_tokenlevel.rewards import (
    EntityFaithfulnessReward,
    FormatPenalty,
    LengthPenalty,
    ReferenceOverlapReward,
    RougeLReward,
    SequenceRewardModelShaping,
    TokenClassifierReward,
    capitalized_entities,
    hallucinated_entities,
)
from trl_tokenlevel.rewards.completion.alignment import token_char_spans
from trl_tokenlevel.rewards.completion.base import compute_completion_rewards


def bpe_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on a few sentences, so names split into several sub-word tokens."""
    backend = ByteLevelBPETokenizer()
    corpus = ["Amanda meets Tom in the park.", "Hannah asks Larry for Betty's number.", "the cat sat on the mat"] * 5
    backend.train_from_iterator(corpus, vocab_size=300, min_frequency=1, special_tokens=["<pad>", "</s>"])
    return PreTrainedTokenizerFast(tokenizer_object=backend._tokenizer, pad_token="<pad>", eos_token="</s>")


def test_token_char_spans_follow_subword_pieces():
    tok = bpe_tokenizer()
    ids = tok("Amanda meets Boris.")["input_ids"] + [tok.eos_token_id]
    text, spans = token_char_spans(tok, ids)
    assert text == "Amanda meets Boris."
    assert "".join(text[s:e] for s, e in spans) == text and spans[-1][0] == spans[-1][1]  # EOS adds nothing


def test_entity_faithfulness_penalises_every_piece_of_an_invented_name():
    tok = bpe_tokenizer()
    ids = tok("Amanda meets Boris in Paris.")["input_ids"]
    text, spans = token_char_spans(tok, ids)
    [rewards] = EntityFaithfulnessReward(tok, source_column="context")(
        ["p"], [text], [ids], context=["Amanda: see you in paris!"]
    )
    penalised = "".join(text[s:e] for (s, e), r in zip(spans, rewards) if r < 0)
    assert penalised.strip() == "Boris", (penalised, rewards)
    assert len([r for r in rewards if r < 0]) > 1  # "Boris" is several BPE pieces
    assert hallucinated_entities(text, "Amanda: see you in paris!") == (3, 1)
    assert capitalized_entities("The cat met Tom's dog.") == [(12, 17)]


def test_summed_reward_puts_the_dense_signal_into_one_sequence_reward_on_the_last_token():
    from trl_tokenlevel.rewards import SummedReward

    tok = bpe_tokenizer()
    ids = tok("Amanda meets Boris in Paris.")["input_ids"]
    text = tok.decode(ids)
    dense = EntityFaithfulnessReward(tok, source_column="context")
    summed = SummedReward(dense)
    context = ["Amanda: see you in paris!"]
    [per_token] = dense(["p"], [text], [ids], context=context)
    [total] = summed(["p"], [text], [ids], context=context)
    assert total == sum(per_token) < -1.0  # every piece of "Boris", once each, in one number
    assert summed.__name__ == "EntityFaithfulnessReward_summed"
    # placed by the trainer like any sequence reward: all of it on the last token, nothing on "Boris"
    placed, per = compute_completion_rewards([summed], [1.0], ["p"], [text], [ids], (1, len(ids)), context=context)
    assert placed[0, :-1].abs().sum() == 0 and placed[0, -1].item() == total
    assert per["EntityFaithfulnessReward_summed"][2][0].tolist() == [False] * (len(ids) - 1) + [True]
    with pytest.raises(ValueError, match="returned 2 values for completion 0"):
        SummedReward(lambda **k: [[0.0, 1.0]])(["p"], ["x"], [[7, 8, 9]])
    with pytest.raises(ValueError, match="returned None for 1 completions"):
        SummedReward(lambda **k: None)(["p"], ["x"], [[7]])

    def trl_style(completions, **kwargs):  # TRL's reward signature: keyword arguments only
        return [[1.0] * len(ids) for ids in kwargs["completion_ids"]]

    assert SummedReward(trl_style)(["p", "p"], ["x", "y"], [[7, 8], [9]]) == [2.0, 1.0]


def test_entity_faithfulness_with_an_ner_model():
    tok = lm_tokenizer()
    labels = ["O", "B-PER", "I-PER"]
    torch.manual_seed(0)
    ner = BertForTokenClassification(BertConfig(
        vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        num_labels=3, id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
    ))
    with torch.no_grad():  # make the classifier call w5 a person and everything else O
        ner.classifier.weight.zero_()
        ner.classifier.bias.copy_(torch.tensor([1.0, 0.0, -5.0]))
        ner.bert.embeddings.word_embeddings.weight[tok.convert_tokens_to_ids("w5")] = 0
    extractor_reward = EntityFaithfulnessReward(tok, source_column="src", ner_model=ner, ner_tokenizer=tok)
    spans = extractor_reward.extractor("w1 w5 w2")
    assert all(isinstance(s, tuple) for s in spans)
    ids = tok("w1 w5 w2")["input_ids"]
    [rewards] = extractor_reward(["p"], ["w1 w5 w2"], [ids], src=["w1 w2"])
    assert len(rewards) == 3 and set(rewards) <= {0.0, -1.0}


def test_reference_overlap_rouge_length_and_format():
    tok = lm_tokenizer()
    ids = tok("w1 w2 w3 w1")["input_ids"]
    [dense] = ReferenceOverlapReward(tok, n=1)(["p"], ["w1 w2 w3 w1"], [ids], reference=["w1 w2 w5 w6"])
    assert dense == [0.25, 0.25, 0.0, 0.0]  # clipped: the reference has one w1
    assert RougeLReward()(["p"], ["w1 w2 w3"], [ids], reference=["w1 w2 w3"]) == [1.0]
    assert LengthPenalty(3, 1.0)(["p"], ["x"], [ids]) == [[0.0, 0.0, 0.0, -1.0]]
    assert FormatPenalty(eos_token_id=3)(["p", "p"], ["a", "b"], [[5, 3], [5]]) == [0.0, -1.0]
    assert round(rouge_n("a b c d", "a b c e", 1), 4) == 0.75 and rouge_l("", "a") == 0.0
    assert rouge_scores(["a b"], ["a b"]) == {"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0}


def test_token_classifier_reward_shared_vocab_and_own_tokenizer():
    tok = lm_tokenizer()
    torch.manual_seed(0)
    model = BertForTokenClassification(BertConfig(
        vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, num_labels=1,
    ))
    prompt_ids, completion_ids = [[2, 5, 6]], [[7, 8, 3]]
    [rewards] = TokenClassifierReward(model)(["p"], ["w3 w4"], completion_ids, prompt_ids=prompt_ids)
    expected = model(torch.tensor([[2, 5, 6, 7, 8, 3]])).logits[0, 3:, 0]
    torch.testing.assert_close(torch.tensor(rewards), expected.detach())
    [aligned] = TokenClassifierReward(model, tokenizer=tok, policy_tokenizer=tok)(["w1 w2"], ["w3 w4"], completion_ids)
    assert len(aligned) == 3 and aligned[-1] == 0.0  # EOS adds no characters


def test_sequence_reward_model_prefix_differences_telescope():
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(LlamaConfig(
        vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, num_labels=1, pad_token_id=0,
    ))
    prompt_ids, completion_ids = [[2, 5, 6], [2, 9]], [[7, 8, 3], [11]]
    rewards = SequenceRewardModelShaping(model)(["p", "q"], ["a", "b"], completion_ids, prompt_ids=prompt_ids)
    assert [len(r) for r in rewards] == [3, 1]
    with torch.no_grad():
        full = model(torch.tensor([[2, 5, 6, 7, 8, 3]])).logits[0, 0]
        empty = model(torch.tensor([[2, 5, 6]])).logits[0, 0]
    assert abs(sum(rewards[0]) - float(full - empty)) < 1e-5


def test_greedy_completions_sorted_by_length_come_back_in_prompt_order():
    from tiny_lm import prompt_dataset, tiny_llama
    from trl_tokenlevel.generation.evaluate import greedy_completions

    tok = lm_tokenizer()
    model = tiny_llama(seed=0)
    prompts = prompt_dataset(7, seed=3)["prompt"]
    assert len({len(p) for p in prompts}) > 2  # mixed lengths, so sorting reorders them
    one_by_one = greedy_completions(model, tok, prompts, max_new_tokens=5, batch_size=1)
    sorted_batches = greedy_completions(model, tok, prompts, max_new_tokens=5, batch_size=3, sort_by_length=True)
    assert sorted_batches == one_by_one and len(set(one_by_one)) > 1


def test_summary_metrics_count_what_the_records_list():
    from trl_tokenlevel.generation.evaluate import summary_metrics, summary_records

    predictions = ["Amanda meets Boris.", "Tom calls.", "nobody"]
    references = ["Amanda meets Tom.", "Tom calls Ann.", "x"]
    sources = ["Amanda: hi", "Tom: call me", "y"]
    judge = lambda text: [(0, len(text.split()[0]))]  # noqa: E731 - the first word is the only entity
    records = summary_records(predictions, references, sources, judge_extractor=judge)
    assert [r["hallucinated"] for r in records] == [["Boris"], [], []]
    assert [r["judged_entities"] for r in records] == [["Amanda"], ["Tom"], ["nobody"]]
    assert [r["judged_hallucinated"] for r in records] == [[], [], ["nobody"]]
    direct = summary_metrics(predictions, references, sources, judge_extractor=judge)
    assert direct == summary_metrics(predictions, references, sources, judge_extractor=judge, records=records)
    assert (direct["entities"], direct["hallucinated_entities"], direct["judged_entities"], direct["judged_hallucinated_entities"]) == (3, 1, 3, 1)
    assert direct["judged_hallucinated_entity_rate"] == pytest.approx(100 / 3)
    with pytest.raises(ValueError, match="3 predictions, 2 references and 3 sources"):
        summary_records(predictions, references[:2], sources)
