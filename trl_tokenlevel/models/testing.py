"""Tiny random models built offline from configs, for tests, benchmarks of the machinery and examples (no downloads).

They learn nothing useful; they make the code paths run in seconds. `tiny_llama` + `lm_tokenizer` is a 2-layer Llama
over a 32-word vocabulary `w0..w27` with a chat template.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast


LM_SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
LM_WORDS = [f"w{i}" for i in range(28)]
CHAT_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }} {% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"


def lm_tokenizer() -> PreTrainedTokenizerFast:
    """Whitespace word-level tokenizer over `<pad> <unk> <s> </s> w0..w27` (+ `user: assistant:` for chat)."""
    vocab = {tok: i for i, tok in enumerate(LM_SPECIALS + LM_WORDS + ["user:", "assistant:"])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_llama(seed: int = 0, hidden: int = 32, vocab_size: int = len(LM_SPECIALS) + len(LM_WORDS) + 2) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128, pad_token_id=0, bos_token_id=2,
        eos_token_id=3, tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)
