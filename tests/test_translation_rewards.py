"""Translation rewards (character n-gram credit per token, sacreBLEU chrF/BLEU) and generation metrics."""

import doctest
from types import SimpleNamespace

import pytest
import sacrebleu
from sacrebleu.metrics.helpers import extract_all_char_ngrams
from tokenizers import ByteLevelBPETokenizer
from transformers import PreTrainedTokenizerFast

import trl_tokenlevel.metrics.text_generation as text_generation
import trl_tokenlevel.rewards.completion.translation as translation
from trl_tokenlevel.metrics.text import rouge_scores
from trl_tokenlevel.metrics.text_generation import generation_scores, metric_signatures
from trl_tokenlevel.rewards import compute_completion_rewards
from trl_tokenlevel.rewards.completion.translation import BleuReward, CharNgramOverlapReward, ChrFReward, char_owners


def piece_tokenizer(pieces):
    """Decodes id i to pieces[i], concatenated: token boundaries are exactly the pieces."""
    return SimpleNamespace(decode=lambda ids, skip_special_tokens=True: "".join(pieces[i] for i in ids))


def credits(pieces, reference, **kwargs):
    tok = piece_tokenizer([""] + pieces)
    ids = list(range(1, len(pieces) + 1))
    [row] = CharNgramOverlapReward(tok, **kwargs)(["p"], ["".join(pieces)], [ids], target=[reference])
    return row


def sacrebleu_mean_recall(hypothesis, reference, n_max=6):
    """chrF's averaged recall from sacreBLEU's own n-gram extraction (valid when every order is effective)."""
    hyp, ref = extract_all_char_ngrams(hypothesis, n_max), extract_all_char_ngrams(reference, n_max)
    return sum(sum((h & r).values()) / sum(r.values()) for h, r in zip(hyp, ref)) / n_max


def bpe_tokenizer() -> PreTrainedTokenizerFast:
    backend = ByteLevelBPETokenizer()
    corpus = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.", "A man rides a bike."] * 5
    backend.train_from_iterator(corpus, vocab_size=300, min_frequency=1, special_tokens=["<pad>", "</s>"])
    return PreTrainedTokenizerFast(tokenizer_object=backend._tokenizer, pad_token="<pad>", eos_token="</s>")


@pytest.mark.parametrize("module", [translation, text_generation])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0, result


def test_worked_example_by_hand():
    # r = "einHund": 7 unigrams, 6 bigrams. "ein" completes e,i,n + ei,in; " Hu" completes H,u + nH,Hu; "t" nothing.
    row = credits(["ein", " Hu", "t"], "ein Hund", n_max=2)
    assert row == pytest.approx([(3 / 7 + 2 / 6) / 2, (2 / 7 + 2 / 6) / 2, 0.0])


def test_token_adding_no_matching_ngram_gets_zero_and_clipping():
    assert credits(["ein", " Hund", " xyz"], "ein Hund")[2] == 0.0
    # The reference has one "ein": the second copy finds every n-gram used up (clipped counts), so it earns nothing.
    row = credits(["ein", " ein"], "ein")
    assert row[0] == pytest.approx(1.0) and row[1] == 0.0


@pytest.mark.parametrize(
    "hypothesis, reference",
    [
        ("Ein Mann fährt Fahrrad.", "Ein Mann fährt auf einem Fahrrad."),
        ("Zwei Hunde spielen im Schnee", "Zwei Hunde spielen im Schnee."),
        ("ein ein ein Mann Mann", "Ein Mann und ein Mann."),
        ("völlig anders", "Ein Hund."),
    ],
)
def test_credits_sum_to_chrf_mean_recall_for_any_tokenization(hypothesis, reference):
    expected = sacrebleu_mean_recall(hypothesis, reference)
    per_char = credits(list(hypothesis), reference)
    per_word = credits([w if i == 0 else " " + w for i, w in enumerate(hypothesis.split())], reference)
    assert sum(per_char) == pytest.approx(expected, abs=1e-12)
    assert sum(per_word) == pytest.approx(expected, abs=1e-12)
    tok = bpe_tokenizer()
    ids = tok(hypothesis)["input_ids"] + [tok.eos_token_id]
    [row] = CharNgramOverlapReward(tok)(["p"], [hypothesis], [ids], target=[reference])
    assert len(row) == len(ids) and row[-1] == 0.0  # EOS adds no character
    assert sum(row) == pytest.approx(expected, abs=1e-12)


def test_ngrams_cross_word_boundaries_and_credit_goes_to_the_last_character():
    # "ab" exists in the reference only across the space removed by chrF; the bigram is paid to the token of "b".
    row = credits(["a", " b"], "a b", n_max=2)
    assert row == pytest.approx([(1 / 2) / 2, (1 / 2 + 1) / 2])


def test_short_reference_averages_only_its_orders():
    assert sum(credits(["Hund"], "Hund")) == pytest.approx(1.0)  # 4 characters: orders 1..4, all recalled
    assert sum(credits(["Hu"], "Hund", n_max=4)) == pytest.approx((2 / 4 + 1 / 3) / 4)


def test_lowercase_and_not_applicable_and_missing_column():
    assert credits(["EIN"], "ein", n_max=1) == [0.0]
    assert credits(["EIN"], "ein", n_max=1, lowercase=True) == pytest.approx([1.0])
    tok = piece_tokenizer(["", "x"])
    assert CharNgramOverlapReward(tok)(["p"], ["x"], [[1]], target=["  "]) == [None]
    with pytest.raises(KeyError, match="'target'.*reference_column"):
        CharNgramOverlapReward(tok)(["p"], ["x"], [[1]], reference=["x"])
    with pytest.raises(ValueError, match="n_max"):
        CharNgramOverlapReward(tok, n_max=0)


def test_char_owners_first_token_reaching_past_each_character():
    assert char_owners([(0, 2), (2, 2), (2, 4)], 4) == [0, 0, 2, 2]
    assert char_owners([], 0) == []


def test_character_split_over_byte_tokens_is_credited_once():
    backend = ByteLevelBPETokenizer()  # trained without umlauts: "ä" is two byte tokens
    backend.train_from_iterator(["a b c"] * 3, vocab_size=260, min_frequency=1, special_tokens=["<pad>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=backend._tokenizer)
    ids = tok("fährt")["input_ids"]
    assert len(ids) == 6  # f, first byte of ä, second byte, h, r, t
    [row] = CharNgramOverlapReward(tok, n_max=1)(["p"], ["fährt"], [ids], target=["fährt"])
    assert row == pytest.approx([0.2, 0.2, 0.0, 0.2, 0.2, 0.2])  # "ä" paid to the token that began it


def test_dense_reward_goes_through_the_trainer_placement():
    tok = piece_tokenizer(["", "ein", " Hu", "t"])
    reward = CharNgramOverlapReward(tok, n_max=2)
    total, per = compute_completion_rewards(
        [reward], [1.0], ["p"], ["ein Hut"], [[1, 2, 3]], (1, 4), target=["ein Hund"]
    )
    assert total[0, :3].tolist() == pytest.approx([16 / 42, 13 / 42, 0.0]) and total[0, 3] == 0
    assert per["CharNgramOverlapReward"][2].tolist() == [[True, True, True, False]]


def test_sequence_rewards_equal_sacrebleu_sentence_scores():
    hyps = ["Ein Mann fährt Fahrrad.", "Zwei Hunde im Schnee.", ""]
    refs = ["Ein Mann fährt auf einem Fahrrad.", "Zwei Hunde spielen im Schnee.", "Ein Hund."]
    ids = [[1]] * 3
    chrf = ChrFReward()(["p"] * 3, hyps, ids, target=refs)
    bleu = BleuReward()(["p"] * 3, hyps, ids, target=refs)
    assert chrf == pytest.approx([sacrebleu.sentence_chrf(h, [r]).score / 100 for h, r in zip(hyps, refs)])
    assert bleu == pytest.approx([sacrebleu.sentence_bleu(h, [r]).score / 100 for h, r in zip(hyps, refs)])
    assert 0 < chrf[1] < 1 and 0 < bleu[1] < 1 and chrf[2] == bleu[2] == 0.0
    # chrF++ through the kwargs, and several references: the best one counts.
    chrf_plus_plus = ChrFReward(reference_column="reference", word_order=2)
    plus = chrf_plus_plus(["p"], [hyps[0]], [[1]], reference=[[refs[1], hyps[0]]])
    assert plus == pytest.approx([1.0])


def test_generation_scores_match_sacrebleu_and_rouge():
    predictions = ["Ein Mann fährt Fahrrad.", "Zwei Hunde im Schnee.", ""]
    references = ["Ein Mann fährt auf einem Fahrrad.", "Zwei Hunde spielen im Schnee.", "Ein Hund."]
    scores = generation_scores(predictions, references)
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(predictions, [references]).score)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(predictions, [references]).score)
    assert scores["rougeL"] == pytest.approx(rouge_scores(predictions, references)["rougeL"])
    assert scores["mean_words"] == pytest.approx(8 / 3) and scores["mean_reference_words"] == pytest.approx(13 / 3)
    assert scores["empty_fraction"] == pytest.approx(1 / 3) and scores["num_examples"] == 3
    assert set(metric_signatures()) == {"bleu", "chrf"} and "tok:13a" in metric_signatures()["bleu"]
    with pytest.raises(ValueError, match="2 predictions and 1 references"):
        generation_scores(["a", "b"], ["a"])
    with pytest.raises(TypeError, match="Pair 0"):
        generation_scores([["a"]], ["a"])
