"""Attention-based credit (ABC): the split of the score on hand-made attention, the alignment between two tokenizers
that split words differently, and the full reward on a tiny random BERT classifier."""

import doctest

import pytest
import torch
from tokenizers import (
    ByteLevelBPETokenizer,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    PreTrainedTokenizerFast,
)

from trl_tokenlevel.rewards import compute_completion_rewards
from trl_tokenlevel.rewards.completion import attention_credit
from trl_tokenlevel.rewards.completion.alignment import token_char_spans
from trl_tokenlevel.rewards.completion.attention_credit import (
    AttentionCreditReward,
    attention_to_policy_tokens,
    redistribute_by_attention,
)


RM_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "film", "is", "a", "joy", "un", "##believ", "##able", "dull", "!"]
TEXT = " is unbelievable, a Joy!"


def rm_tokenizer() -> PreTrainedTokenizerFast:
    """Uncased WordPiece, BERT-style: `unbelievable` -> `un ##believ ##able`, `Joy` -> `joy`."""
    vocab = {token: i for i, token in enumerate(RM_VOCAB)}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    backend.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )


def policy_tokenizer() -> PreTrainedTokenizerFast:
    """Cased byte-level BPE (like SmolLM2's): `unbelievable` -> `Ġunbeliev able`, `Joy` -> `J o y`."""
    backend = ByteLevelBPETokenizer()
    corpus = ["the film is unbelievable", "an unbeliever", "able bel ie", "joyful joy", "the film was dull"] * 3
    backend.train_from_iterator(corpus, vocab_size=290, min_frequency=2, special_tokens=["<pad>", "</s>"])
    return PreTrainedTokenizerFast(tokenizer_object=backend._tokenizer, pad_token="<pad>", eos_token="</s>")


def tiny_classifier(attn_implementation: str = "eager", seed: int = 0, initializer_range: float = 0.02) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(RM_VOCAB), hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64, num_labels=2, attn_implementation=attn_implementation,
        initializer_range=initializer_range,
    )
    return BertForSequenceClassification(config).eval()


def test_docstring_examples():
    result = doctest.testmod(attention_credit)
    assert result.attempted >= 3 and result.failed == 0


def test_rewards_sum_to_the_score_and_follow_the_attention():
    offsets = [None, (0, 2), (3, 5), (6, 8), (9, 11), None]  # [CLS] four words [SEP]
    policy = [(0, 2), (2, 5), (5, 8), (8, 11), (11, 11)]  # four words (with their spaces), then EOS
    attention = [5.0, 0.1, 0.4, 0.2, 0.3, 2.0]  # [CLS] and [SEP] take most of it and are dropped
    rewards = redistribute_by_attention(-3.0, attention, offsets, policy, beta=0.8)
    assert sum(rewards) == pytest.approx(-3.0)
    dense = [r / (0.8 * -3.0) for r in rewards[:-1]]
    assert dense == pytest.approx([0.1, 0.4, 0.2, 0.3])  # more attention, more of the score
    assert rewards[-1] == pytest.approx(0.2 * -3.0)  # EOS adds no characters: only the sparse part
    assert redistribute_by_attention(2.0, attention, offsets, policy, beta=0.0) == [0.0] * 4 + [2.0]
    spread = redistribute_by_attention(2.0, attention, offsets, policy, beta=1.0)
    assert spread == pytest.approx([0.2, 0.8, 0.4, 0.6, 0.0]) and sum(spread) == pytest.approx(2.0)


def test_no_attention_on_the_completion_falls_back_to_the_last_token():
    assert redistribute_by_attention(1.5, [1.0, 1.0], [None, None], [(0, 0)]) == [1.5]
    assert redistribute_by_attention(1.5, [], [], []) == []
    assert redistribute_by_attention(1.5, [0.0, 0.0], [(0, 1), (1, 2)], [(0, 1), (1, 2)]) == [0.0, 1.5]


def test_a_reward_model_token_split_between_policy_tokens_shares_by_characters():
    # "unbelievable": un|##believ|##able (reward model) vs unb|elievable (policy): 1 of ##believ's 6 chars is in unb.
    weights = attention_to_policy_tokens([0.1, 0.6, 0.3], [(0, 2), (2, 8), (8, 12)], [(0, 3), (3, 12)])
    assert weights == pytest.approx([0.1 + 0.6 / 6, 0.6 * 5 / 6 + 0.3])


def test_alignment_between_wordpiece_and_byte_level_bpe():
    rm_tok, policy_tok = rm_tokenizer(), policy_tokenizer()
    encoding = rm_tok("the film", TEXT, return_offsets_mapping=True)
    assert rm_tok.convert_ids_to_tokens(encoding["input_ids"])[4:-1] == ["is", "un", "##believ", "##able", "[UNK]", "a", "joy", "!"]
    rm_offsets = [o if s == 1 else None for o, s in zip(encoding["offset_mapping"], encoding.sequence_ids())]
    ids = policy_tok(TEXT)["input_ids"] + [policy_tok.eos_token_id]
    assert policy_tok.convert_ids_to_tokens(ids) == ["Ġis", "Ġunbeliev", "able", ",", "Ġ", "a", "Ġ", "J", "o", "y", "!", "</s>"]
    text, policy_offsets = token_char_spans(policy_tok, ids)
    assert text == TEXT
    attention = [0.0] * len(rm_offsets)
    for token, value in {"un": 0.2, "##believ": 0.3, "##able": 0.1, "joy": 0.4, "[CLS]": 9.0, "film": 9.0}.items():
        attention[rm_tok.convert_ids_to_tokens(encoding["input_ids"]).index(token)] = value
    rewards = redistribute_by_attention(2.0, attention, rm_offsets, policy_offsets, beta=0.5)
    #          Ġis  Ġunbeliev    able  ,    Ġ    a    Ġ    J          o          y          !    </s>
    expected = [0.0, 0.2 + 0.3, 0.1, 0.0, 0.0, 0.0, 0.0, 0.4 / 3, 0.4 / 3, 0.4 / 3, 0.0, 1.0]
    assert rewards == pytest.approx(expected)


def test_bad_inputs_name_the_fix():
    with pytest.raises(ValueError, match="one weight per reward-model token"):
        attention_to_policy_tokens([0.1], [(0, 1), (1, 2)], [(0, 2)])
    with pytest.raises(ValueError, match="attention weights are >= 0"):
        attention_to_policy_tokens([-0.1], [(0, 1)], [(0, 1)])
    with pytest.raises(ValueError, match=r"beta=1.5 is outside \[0, 1\]"):
        redistribute_by_attention(1.0, [1.0], [(0, 1)], [(0, 1)], beta=1.5)
    rm_tok, policy_tok = rm_tokenizer(), policy_tokenizer()
    with pytest.raises(ValueError, match="set_attn_implementation\\('eager'\\)"):
        AttentionCreditReward(tiny_classifier("sdpa"), rm_tok, policy_tok, label_index=1)
    with pytest.raises(ValueError, match="pass label_index"):
        AttentionCreditReward(tiny_classifier(), rm_tok, policy_tok)
    with pytest.raises(ValueError, match="input_format='words' is not one of"):
        AttentionCreditReward(tiny_classifier(), rm_tok, policy_tok, label_index=1, input_format="words")


def manual_score_and_cls_attention(model, encoding):
    with torch.no_grad():
        output = model(**encoding, output_attentions=True)
    logits = output.logits[0]
    return float(logits[1] - logits[0]), output.attentions[-1][0].mean(0)[0].tolist()  # last layer, heads, [CLS] row


def test_full_reward_on_a_tiny_bert_classifier():
    rm_tok, policy_tok, model = rm_tokenizer(), policy_tokenizer(), tiny_classifier()
    completions = [TEXT, " dull!", ""]
    completion_ids = [policy_tok(c)["input_ids"] + [policy_tok.eos_token_id] for c in completions]
    reward = AttentionCreditReward(model, rm_tok, policy_tok, label_index=1, beta=0.5)
    rewards = reward(["the film"] * 3, completions, completion_ids)
    assert [len(r) for r in rewards] == [len(ids) for ids in completion_ids]
    for text, values in zip(completions, rewards):
        joined = "the film" + (text if text.startswith(" ") else " " + text)  # one space between prompt and completion
        encoding = rm_tok(joined, return_offsets_mapping=True, return_tensors="pt")
        offsets = encoding.pop("offset_mapping")[0].tolist()
        score, cls_row = manual_score_and_cls_attention(model, encoding)
        assert sum(values) == pytest.approx(score, abs=1e-5)  # the per-token rewards sum to the log-odds
        start = len(joined) - len(text)
        rm_offsets = [(s - start, e - start) if e > start else None for s, e in offsets]
        rm_offsets[-1] = None  # [SEP]
        _, policy_offsets = token_char_spans(policy_tok, completion_ids[completions.index(text)])
        assert values == pytest.approx(redistribute_by_attention(score, cls_row, rm_offsets, policy_offsets), abs=1e-5)
    assert rewards[2][-1] == pytest.approx(sum(rewards[2])) and len(rewards[2]) == 1  # EOS only: the whole score
    sparse = AttentionCreditReward(model, rm_tok, policy_tok, label_index=1, beta=0.0)(["the film"], [TEXT], completion_ids[:1])
    assert sparse[0][:-1] == [0.0] * (len(completion_ids[0]) - 1) and sparse[0][-1] == pytest.approx(sum(rewards[0]))
    total, _ = compute_completion_rewards([reward], [1.0], ["the film"] * 3, completions, completion_ids, (3, 12))
    assert total.sum(-1).tolist() == pytest.approx([sum(r) for r in rewards], abs=1e-5)


def test_pair_input_and_probability_score_and_truncation():
    rm_tok, policy_tok, model = rm_tokenizer(), policy_tokenizer(), tiny_classifier()
    ids = [policy_tok(TEXT)["input_ids"] + [policy_tok.eos_token_id]]
    pair = AttentionCreditReward(model, rm_tok, policy_tok, label_index=1, input_format="pair", score="probability")
    [values] = pair(["the film"], [TEXT], ids)
    encoding = rm_tok("the film", TEXT, return_offsets_mapping=True, return_tensors="pt")
    segments, offsets = encoding.sequence_ids(), encoding.pop("offset_mapping")[0].tolist()
    log_odds, cls_row = manual_score_and_cls_attention(model, encoding)
    probability = torch.tensor(log_odds).sigmoid().item()  # 2 labels: softmax = sigmoid of the logit difference
    assert sum(values) == pytest.approx(probability, abs=1e-6)
    rm_offsets = [tuple(o) if s == 1 else None for o, s in zip(offsets, segments)]  # the second segment only
    _, policy_offsets = token_char_spans(policy_tok, ids[0])
    assert values == pytest.approx(redistribute_by_attention(probability, cls_row, rm_offsets, policy_offsets), abs=1e-6)
    short = AttentionCreditReward(model, rm_tok, policy_tok, label_index=1, max_length=6)
    with pytest.raises(ValueError, match="Completion 0 does not fit in the reward model's max_length=6"):
        short(["the film"], [TEXT], ids)


def test_decoder_reward_model_reads_the_last_non_padding_row():
    from transformers import LlamaConfig, LlamaForSequenceClassification

    policy_tok = policy_tokenizer()
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(LlamaConfig(
        vocab_size=len(policy_tok), hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, num_labels=1, pad_token_id=policy_tok.pad_token_id, attn_implementation="eager",
    )).eval()
    completions = [TEXT, " dull!"]  # different lengths: the shorter one is padded in the batch
    completion_ids = [policy_tok(c)["input_ids"] + [policy_tok.eos_token_id] for c in completions]
    reward = AttentionCreditReward(model, policy_tok, policy_tok, input_format="completion", classification_position="last")
    for text, ids, values in zip(completions, completion_ids, reward(["p", "p"], completions, completion_ids)):
        encoding = policy_tok(text, return_offsets_mapping=True, return_tensors="pt")
        offsets = [tuple(o) for o in encoding.pop("offset_mapping")[0].tolist()]
        with torch.no_grad():
            output = model(**encoding, output_attentions=True)
        score, last_row = float(output.logits[0, 0]), output.attentions[-1][0].mean(0)[-1].tolist()
        _, policy_offsets = token_char_spans(policy_tok, ids)
        assert values == pytest.approx(redistribute_by_attention(score, last_row, offsets, policy_offsets), abs=1e-5)


def test_shaping_with_joined_text_and_log_odds_telescopes_to_the_same_score():
    """The credit-assignment benchmark compares ABC and prefix shaping: both must read the same text and score."""
    from trl_tokenlevel.rewards.completion.reward_models import SequenceRewardModelShaping

    # the default init gives logits ~1e-5 apart; a wider one makes the prefixes' scores differ
    rm_tok, policy_tok, model = rm_tokenizer(), policy_tokenizer(), tiny_classifier(seed=3, initializer_range=0.5)
    completions = [TEXT, " dull!"]
    completion_ids = [policy_tok(c)["input_ids"] + [policy_tok.eos_token_id] for c in completions]
    shaping = SequenceRewardModelShaping(model, rm_tok, policy_tok, label_index=1, score="log_odds", input_format="joined")
    dense = shaping(["the film"] * 2, completions, completion_ids)
    whole = AttentionCreditReward(model, rm_tok, policy_tok, label_index=1, beta=0.0)(["the film"] * 2, completions, completion_ids)
    with torch.no_grad():
        logits = model(**rm_tok("the film", return_tensors="pt")).logits[0]
    prompt_score = float(logits[1] - logits[0])
    assert [len(r) for r in dense] == [len(ids) for ids in completion_ids]
    for values, reference in zip(dense, whole):
        assert sum(values) == pytest.approx(sum(reference) - prompt_score, abs=1e-5)
    assert sum(abs(v) > 0.01 for v in dense[0][:-1]) >= 3  # credit arrives before the last token
    pair = SequenceRewardModelShaping(model, rm_tok, policy_tok, label_index=1, score="log_odds")(["the film"], [TEXT], completion_ids[:1])
    assert sum(pair[0]) != pytest.approx(sum(dense[0]), abs=1e-3)  # a text pair is read differently
    with pytest.raises(ValueError, match="score="):
        SequenceRewardModelShaping(model, rm_tok, policy_tok, score="odds")
    with pytest.raises(ValueError, match="joined"):
        SequenceRewardModelShaping(model, input_format="joined")
