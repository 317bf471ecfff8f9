"""Greedy decoding and summary metrics for evaluating a policy outside the Trainer (used by the recipes)."""

from __future__ import annotations

import torch

from ..metrics.text import rouge_l, rouge_scores, words
from ..rewards.completion.faithfulness import capitalized_entities, entity_in_source
from .rollout import eos_ids, tokenize_prompts


@torch.no_grad()
def greedy_completions(model, tokenizer, prompts: list, max_new_tokens: int, batch_size: int = 8,
                       max_prompt_length: int | None = None, sort_by_length: bool = False) -> list[str]:
    """Greedy (deterministic) completions of `prompts` (text or chat messages), decoded without special tokens.
    Works for causal LMs and encoder-decoder models (right-padded encoder input; the output after the decoder start).
    `sort_by_length` batches prompts of similar length together (less padding: faster on many prompts of mixed
    length); the completions come back in the order of `prompts` either way."""
    encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
    was_training = model.training
    model.eval()
    order = list(range(len(prompts)))
    if sort_by_length:
        lengths = [len(str(p)) for p in prompts]
        order.sort(key=lambda i: lengths[i])
    texts = []
    try:
        for start in range(0, len(prompts), batch_size):
            ids, mask = tokenize_prompts(
                [prompts[i] for i in order[start : start + batch_size]], tokenizer, max_prompt_length, model.device,
                padding_side="right" if encoder_decoder else "left",
            )
            out = model.generate(
                input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=max_new_tokens, top_p=None,
                top_k=None, temperature=None, eos_token_id=eos_ids(tokenizer, model), pad_token_id=tokenizer.pad_token_id,
            )
            # the generated part: after the prompt, or after the decoder_start_token_id of an encoder-decoder model
            texts += tokenizer.batch_decode(out[:, 1 if encoder_decoder else ids.shape[1] :], skip_special_tokens=True)
    finally:
        model.train(was_training)
    out = [""] * len(prompts)
    for index, text in zip(order, texts):
        out[index] = text.strip()
    return out


def summary_metrics(predictions: list[str], references: list[str], sources: list[str], extractor=capitalized_entities,
                    judge_extractor=None, records: list[dict] | None = None) -> dict:
    """ROUGE-1/2/L F1 (percent) and the hallucinated-entity rate: the share (percent) of the entities in all the
    predictions that do not occur in their source (micro-average), with the counts behind it. Entities come from
    `extractor` (default: the capitalised-span heuristic, which `EntityFaithfulnessReward` also uses); with
    `judge_extractor` (e.g. a [`NEREntityExtractor`] over an NER model) the same three numbers are added as
    `judged_hallucinated_entity_rate`, `judged_entities` and `judged_hallucinated_entities`: a second opinion that
    does not share the reward's entity finder. Pass the [`summary_records`] of the same texts as `records` to count
    from them instead of running the extractors again."""
    if records is None:
        records = summary_records(predictions, references, sources, extractor, judge_extractor)
    elif len(records) != len(predictions):
        raise ValueError(f"Got {len(records)} records for {len(predictions)} predictions.")
    scores = rouge_scores(predictions, references)
    for prefix in ("", "judged_") if judge_extractor is not None else ("",):
        entities = sum(len(r[f"{prefix}entities"]) for r in records)
        hallucinated = sum(len(r[f"{prefix}hallucinated"]) for r in records)
        scores[f"{prefix}hallucinated_entity_rate"] = 100.0 * hallucinated / max(entities, 1)
        scores[f"{prefix}entities"] = entities
        scores[f"{prefix}hallucinated_entities"] = hallucinated
    scores["mean_words"] = sum(len(p.split()) for p in predictions) / len(predictions)
    return scores


def summary_records(predictions: list[str], references: list[str], sources: list[str], extractor=capitalized_entities,
                    judge_extractor=None) -> list[dict]:
    """One record per summary with what [`summary_metrics`] counts: its ROUGE-L (percent), word count, and the
    entities found (and those absent from the source) by `extractor` and, when given, `judge_extractor` (keys
    prefixed `judged_`); the corpus numbers can be recomputed from these records."""
    if not len(predictions) == len(references) == len(sources):
        raise ValueError(f"Got {len(predictions)} predictions, {len(references)} references and {len(sources)} sources: "
                         "one of each per example.")
    finders = {"": extractor} if judge_extractor is None else {"": extractor, "judged_": judge_extractor}
    records = []
    for prediction, reference, source in zip(predictions, references, sources):
        record = {"rougeL": 100.0 * rouge_l(prediction, reference), "words": len(prediction.split())}
        source_words = words(source)
        for prefix, finder in finders.items():
            found = [prediction[start:end] for start, end in finder(prediction)]
            record[f"{prefix}entities"] = found
            record[f"{prefix}hallucinated"] = [e for e in found if not entity_in_source(e, source_words)]
        records.append(record)
    return records
