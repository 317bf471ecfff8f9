"""A tiny random Llama and a word-level tokenizer with a chat template, for the generation tests (no downloads)."""

from __future__ import annotations

import random

import datasets

from trl_tokenlevel.models.testing import CHAT_TEMPLATE, LM_SPECIALS, LM_WORDS, lm_tokenizer, tiny_llama  # noqa: F401


def prompt_dataset(num_prompts: int, seed: int = 0, chat: bool = False) -> datasets.Dataset:
    """Random 2-5 word prompts over w0..w27, with a `reference` column (the prompt reversed)."""
    rng = random.Random(seed)
    texts = [" ".join(f"w{rng.randrange(28)}" for _ in range(rng.randint(2, 5))) for _ in range(num_prompts)]
    prompts = [[{"role": "user", "content": t}] for t in texts] if chat else texts
    return datasets.Dataset.from_dict({"prompt": prompts, "reference": [" ".join(t.split()[::-1]) for t in texts]})
