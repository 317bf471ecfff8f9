"""One SGD step of TokenLevelRLTrainer, run under `accelerate launch` by tests/test_distributed.py.

    accelerate launch --config_file recipes/accelerate_configs/cpu_2proc.yaml tests/distributed_step.py OUT_DIR 4

The global batch is the 8 sentences of `synthetic_dataset(8, seed=3)`: per-device batch = 8 / world size. Sampling
is made independent of how the batch is split (Gumbel noise fixed per sample, position and label), dropout is off,
so 1 and 2 processes must take the same step. The policy is perturbed away from its frozen reference first, so
the KL term contributes to the gradient. Every rank writes its logged metrics; rank 0 writes the parameters.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import trl_tokenlevel.token_classification.trainer as trainer_module  # noqa: E402
from distributed_common import spy_local_metrics, write_step_outputs  # noqa: E402
from tiny import perturb, synthetic_dataset, tiny_bert, word_tokenizer  # noqa: E402
from trl_tokenlevel import TokenLevelRLConfig, TokenLevelRLTrainer  # noqa: E402
from trl_tokenlevel.rewards import EntitySpanReward, TokenAccuracyReward  # noqa: E402


def deterministic_samples(logits, num_samples, temperature=1.0):
    generator = torch.Generator().manual_seed(1234)
    noise = -torch.log(-torch.log(torch.rand(num_samples, 1, 64, logits.shape[-1], generator=generator)))
    return (logits.detach().unsqueeze(0) / temperature + noise[:, :, : logits.shape[1]]).argmax(-1)


def main(out_dir: str, per_device_batch_size: int) -> None:
    torch.set_num_threads(1)
    trainer_module.sample_actions = deterministic_samples
    args = TokenLevelRLConfig(
        output_dir=out_dir, per_device_train_batch_size=per_device_batch_size, max_steps=1, optim="sgd",
        learning_rate=1.0, lr_scheduler_type="constant", disable_dropout=True, logging_steps=1, kl_coef=0.1,
        entropy_coef=0.01, max_grad_norm=0.0, num_samples=3, use_cpu=True, report_to="none", save_strategy="no",
        disable_tqdm=True, seed=0, train_sampling_strategy="sequential",
    )
    trainer = TokenLevelRLTrainer(
        model=tiny_bert(), reward_funcs=[TokenAccuracyReward(), EntitySpanReward()], args=args,
        train_dataset=synthetic_dataset(8, seed=3), processing_class=word_tokenizer(),
    )
    perturb(trainer.model)  # away from the frozen reference: the KL term has a gradient
    local = spy_local_metrics(trainer, ("reward",))  # this rank's own sums, before the cross-rank reduction
    trainer.train()
    write_step_outputs(trainer, out_dir, local)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
