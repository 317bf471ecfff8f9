"""Tiny random encoder-decoder models (T5, Marian) and a word-level T5-style tokenizer, built from configs (no
downloads), for tests/test_seq2seq_generation.py and the 2-process step of tests/test_distributed.py."""

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import MarianConfig, MarianMTModel, PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration


SPECIALS = ["<pad>", "</s>", "<unk>"]  # T5's ids: pad 0 (also the decoder start), EOS 1, unknown 2
WORDS = [f"w{i}" for i in range(28)]


def seq2seq_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer over `<pad> </s> <unk> w0..w27` that appends `</s>` to every encoded text, as T5's does."""
    backend = Tokenizer(models.WordLevel({t: i for i, t in enumerate(SPECIALS + WORDS)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def tiny_t5(seed: int = 0, vocab_size: int = len(SPECIALS) + len(WORDS)) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=vocab_size, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2, dropout_rate=0.1,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=False,
    )
    return T5ForConditionalGeneration(config)


def tiny_marian(seed: int = 0, vocab_size: int = len(SPECIALS) + len(WORDS)) -> MarianMTModel:
    torch.manual_seed(seed)
    config = MarianConfig(
        vocab_size=vocab_size, d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64, dropout=0.1,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, forced_eos_token_id=None,
    )
    return MarianMTModel(config)
