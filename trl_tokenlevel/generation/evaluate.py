"""Greedy decoding and summary metrics for evaluating a policy outside the Trainer (used by the recipes)."""

from __future__ import annotations

import torch

from ..rewards.completion.faithfulness import capitalized_entities, hallucinated_entities
from .rollout import eos_ids, tokenize_prompts
from ..metrics.text import rouge_scores


@torch.no_grad()
def greedy_completions(model, tokenizer, prompts: list, max_new_tokens: int, batch_size: int = 8,
                       max_prompt_length: int | None = None) -> list[str]:
    """Greedy (deterministic) completions of `prompts` (text or chat messages), decoded without special tokens.
    Works for causal LMs and encoder-decoder models (right-padded encoder input; the output after the decoder start)."""
    encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
    was_training = model.training
    model.eval()
    texts = []
    try:
        for start in range(0, len(prompts), batch_size):
            ids, mask = tokenize_prompts(
                prompts[start : start + batch_size], tokenizer, max_prompt_length, model.device,
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
    return [t.strip() for t in texts]


def summary_metrics(predictions: list[str], references: list[str], sources: list[str], extractor=capitalized_entities) -> dict:
    """ROUGE-1/2/L F1 (percent) and the hallucinated-entity rate: the share (percent) of the entities in all the
    predictions that do not occur in their source (micro-average), with the counts behind it."""
    scores = rouge_scores(predictions, references)
    entities = hallucinated = 0
    for prediction, source in zip(predictions, sources):
        found, missing = hallucinated_entities(prediction, source, extractor)
        entities, hallucinated = entities + found, hallucinated + missing
    scores.update(
        hallucinated_entity_rate=100.0 * hallucinated / max(entities, 1), entities=entities,
        hallucinated_entities=hallucinated, mean_words=sum(len(p.split()) for p in predictions) / len(predictions),
    )
    return scores
