"""One SGD step of TokenLevelRLTrainer on a generation model, run under `accelerate launch` by tests/test_distributed.py.

    accelerate launch --config_file recipes/accelerate_configs/cpu_2proc.yaml tests/distributed_generation_step.py OUT 4 gae llama

The model is a tiny random causal LM ("llama") or encoder-decoder ("t5", "marian": `Seq2SeqGenerationRLTrainer`).

The global batch is the 8 prompts of `prompt_dataset(8, seed=7)`: per-device batch = 8 / world size, 3 completions
per prompt. Sampling is made independent of how the batch is split: `generate` still samples, but the token it draws
is the Gumbel-max of the tempered logits with noise fixed by (sequence so far, sample index), so a prompt gets the same
completions whichever rank holds it and whatever else is in its batch. Completions end at different lengths, so the
two ranks hold different numbers of completion tokens: the step is the same only if the loss divides by the token
count of the whole step. The last argument is the advantage estimator ("leave_one_out" or "gae": a value head on
the hidden states, trained with the policy); the next names the model. Every rank writes its logged metrics; rank 0 writes the parameters.
"""

import sys
import zlib
from functools import partial
from pathlib import Path

import torch
from transformers import LogitsProcessor, LogitsProcessorList

sys.path.insert(0, str(Path(__file__).resolve().parent))

from distributed_common import spy_local_metrics, write_step_outputs  # noqa: E402
from tiny_lm import lm_tokenizer, prompt_dataset, tiny_llama  # noqa: E402
from tiny_seq2seq import seq2seq_tokenizer, tiny_marian, tiny_t5  # noqa: E402
from trl_tokenlevel import TokenLevelRLConfig, TokenLevelRLTrainer  # noqa: E402


MODELS = {"llama": (tiny_llama, lm_tokenizer), "t5": (tiny_t5, seq2seq_tokenizer), "marian": (tiny_marian, seq2seq_tokenizer)}
"""Model kind -> (model builder, tokenizer builder); both tokenizers have the words w0..w27."""


def pays_for_w7(prompts, completions, completion_ids, target: int, **kwargs):
    """Dense: 1 for every sampled w7 (`target`: its id)."""
    return [[1.0 if t == target else 0.0 for t in ids] for ids in completion_ids]


def prefers_short(prompts, completions, completion_ids, **kwargs):
    """Sequence: minus the completion's length in tokens."""
    return [-float(len(ids)) for ids in completion_ids]


class SplitIndependentGumbel(LogitsProcessor):
    """Gumbel-max sampling from `softmax(logits / temperature)` with noise seeded by the row's own tokens.

    The seed is the unpadded sequence so far (causal LM: prompt + completion, prompts left-padded; encoder-decoder:
    the row's unpadded encoder input, set in `sources` before each `generate`, and the decoder's tokens) and the row's
    sample index (a prompt's K completions are contiguous rows), never the row's position in the batch. With
    `eos_rate` > 0 the same noise also draws EOS with that probability (the tiny random T5 and Marian hardly ever
    sample it, and the check needs completions of different lengths). All tokens but the drawn one are set to
    -inf, so `generate`'s own temperature and multinomial keep it; `generate`'s raw logits (the rollout's old
    log-probs) are untouched.
    """

    def __init__(self, num_samples: int, temperature: float, pad_token_id: int, left_padded: bool = True,
                 eos_token_id: int | None = None, eos_rate: float = 0.0):
        self.num_samples, self.temperature, self.pad_token_id = num_samples, temperature, pad_token_id
        self.left_padded, self.eos_token_id, self.eos_rate = left_padded, eos_token_id, eos_rate
        self.sources = None  # encoder-decoder: one unpadded encoder input per row

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        drawn = []
        for row, ids in enumerate(input_ids.tolist()):
            start = next(i for i, t in enumerate(ids) if t != self.pad_token_id) if self.left_padded else 0
            key = (ids[start:], row % self.num_samples) if self.sources is None else (self.sources[row], ids, row % self.num_samples)
            seed = zlib.crc32(repr(key).encode())
            generator = torch.Generator().manual_seed(seed)
            uniform = torch.rand(scores.shape[-1], generator=generator)
            gumbel = -torch.log(-torch.log(uniform.clamp(1e-10, 1 - 1e-10)))
            drawn.append(int((scores[row].float() / self.temperature + gumbel).argmax()))
            if self.eos_rate and float(torch.rand(1, generator=generator)) < self.eos_rate:
                drawn[-1] = self.eos_token_id
        only_drawn = torch.full_like(scores, float("-inf"))
        only_drawn[torch.arange(len(drawn)), drawn] = 0.0
        return only_drawn


def main(out_dir: str, per_device_batch_size: int, advantage_estimator: str, kind: str = "llama") -> None:
    torch.set_num_threads(1)
    build_model, build_tokenizer = MODELS[kind]
    tokenizer = build_tokenizer()
    pays = partial(pays_for_w7, target=tokenizer.convert_tokens_to_ids("w7"))
    pays.__name__ = "pays_for_w7"
    args = TokenLevelRLConfig(
        output_dir=out_dir, per_device_train_batch_size=per_device_batch_size, max_steps=1, optim="sgd",
        learning_rate=1.0, lr_scheduler_type="constant", disable_dropout=True, logging_steps=1, kl_coef=0.1,
        kl_placement="loss", advantage_estimator=advantage_estimator, vf_coef=1.0, entropy_coef=0.01, max_grad_norm=0.0, num_samples=3, max_new_tokens=8, temperature=0.8,
        use_cpu=True, report_to="none", save_strategy="no", disable_tqdm=True, seed=0,
    )
    trainer = TokenLevelRLTrainer(
        model=build_model(seed=0), reward_funcs=[pays, prefers_short], reward_weights=[1.0, 0.1], args=args,
        train_dataset=prompt_dataset(8, seed=7), processing_class=tokenizer,
    )
    model = trainer.accelerator.unwrap_model(trainer.model)
    encoder_decoder = bool(model.config.is_encoder_decoder)
    sampler = SplitIndependentGumbel(
        args.num_samples, args.temperature, tokenizer.pad_token_id, left_padded=not encoder_decoder,
        eos_token_id=tokenizer.eos_token_id, eos_rate=0.25 if encoder_decoder else 0.0,
    )
    original_generate = model.generate

    def generate(*args, input_ids=None, attention_mask=None, **kwargs):
        if encoder_decoder:
            sampler.sources = [tuple(t for t, m in zip(ids, mask) if m)
                               for ids, mask in zip(input_ids.tolist(), attention_mask.tolist())]
        return original_generate(*args, input_ids=input_ids, attention_mask=attention_mask,
                                 logits_processor=LogitsProcessorList([sampler]), **kwargs)

    model.generate = generate

    local = spy_local_metrics(trainer, ("reward", "completion_length"))  # before the cross-rank reduction
    trainer.train()
    write_step_outputs(trainer, out_dir, local)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:])
