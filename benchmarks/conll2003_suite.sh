#!/usr/bin/env bash
# The CoNLL-2003 runs behind docs/benchmarks.md, in the order they were run. Each line writes one JSON to
# docs/results/conll2003/ (sweep runs to docs/results/conll2003_sweep/). Usage: bash benchmarks/conll2003_suite.sh [sweep|low|sentence|ten|full|peft|sweep2|peft_lr|full_sentence|full_peft|entity_only|lora_seeds|entity_only_full|all]
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="python benchmarks/conll2003.py run"
CFG=benchmarks/configs/conll2003
part="${1:-all}"

if [[ $part == sweep || $part == all ]]; then
  # Recipe search on the dev split only, 5% of the training sentences, seed 1.
  S="--train_fraction 0.05 --seed 1 --results_dir docs/results/conll2003_sweep"
  $RUN --config $CFG/ce.yaml $S
  $RUN --config $CFG/ce_token_rl.yaml $S                                              # joint from step 0, rl 1, K=4, greedy
  $RUN --config $CFG/ce_token_rl.yaml $S --set rl_coef=0.3                            # smaller RL weight
  $RUN --config $CFG/ce_token_rl.yaml $S --set rl_start_step=125 kl_coef=0.05 reset_reference_at_rl_start=true  # CE warm-up (half), then RL + KL to the warmed-up model
  $RUN --config $CFG/ce_token_rl.yaml $S --set rl_start_step=125                       # CE warm-up (half), then RL, no KL
  $RUN --config $CFG/ce_token_rl.yaml $S --set baseline=leave_one_out rl_coef=0.3     # RLOO baseline, small RL weight
fi
# The recommended token-level recipe = the ce_token_rl sweep row with the best dev F1 among the five RL rows above
# (rl_start_step=125: CE warm-up for half the run, then RL). Pinned, because the second sweep (sweep2 below) ran
# after the 3-seed rows; see docs/benchmarks.md for what it found.
BEST="rl_start_step=125"
if [[ $part == low || $part == all ]]; then
  for fraction in 0.05 0.01; do   # (the sentence-level rows below ran between the two fractions)
    for seed in 1 2 3; do
      $RUN --config $CFG/ce.yaml --train_fraction $fraction --seed $seed
      $RUN --config $CFG/ce_token_rl.yaml --train_fraction $fraction --seed $seed --set $BEST
    done
  done
fi
if [[ $part == sentence || $part == all ]]; then
  for seed in 1 2 3; do
    $RUN --config $CFG/ce_sentence_rl.yaml --train_fraction 0.05 --seed $seed --set $BEST
  done
fi
if [[ $part == ten || $part == all ]]; then
  for seed in 1 2 3; do
    $RUN --config $CFG/ce.yaml --train_fraction 0.1 --seed $seed
    $RUN --config $CFG/ce_token_rl.yaml --train_fraction 0.1 --seed $seed --set $BEST
  done
fi
if [[ $part == full || $part == all ]]; then
  # Full training set, one epoch (14,041 examples = 878 steps); the recipe's CE warm-up is half the run here too.
  for seed in 1 2 3; do
    $RUN --config $CFG/ce.yaml --train_fraction 1.0 --seed $seed --set budget_examples=14041
    $RUN --config $CFG/ce_token_rl.yaml --train_fraction 1.0 --seed $seed --set budget_examples=14041 rl_start_step=439
  done
fi
if [[ $part == peft || $part == all ]]; then
  # One seed each, 5% of the data, learning rate 1e-3 for every PEFT method (not tuned per method).
  for peft in lora bitfit ia3; do
    $RUN --config $CFG/ce.yaml --train_fraction 0.05 --seed 1 --set peft=$peft learning_rate=1e-3 name=ce_$peft
    $RUN --config $CFG/ce_token_rl.yaml --train_fraction 0.05 --seed 1 --set $BEST peft=$peft learning_rate=1e-3 name=ce_token_rl_$peft
  done
fi
if [[ $part == sweep2 || $part == all ]]; then
  # Second part of the recipe search (dev only, 5%, seed 1), all from the CE warm-up schedule: sampling
  # temperature, K, and the reward mix.
  S="--train_fraction 0.05 --seed 1 --results_dir docs/results/conll2003_sweep"
  $RUN --config $CFG/ce_token_rl.yaml $S --set rl_start_step=125 temperature=0.7
  $RUN --config $CFG/ce_token_rl.yaml $S --set rl_start_step=125 num_samples=8
  $RUN --config $CFG/ce_token_rl.yaml $S --set rl_start_step=125 num_samples=2
  $RUN --config $CFG/ce_token_rl.yaml $S --set rl_start_step=125 rewards=[entity_span] reward_weights=[1.0]
  $RUN --config $CFG/ce_token_rl.yaml $S --set rl_start_step=125 rewards=[token_accuracy] reward_weights=[1.0]
fi
if [[ $part == peft_lr || $part == all ]]; then
  # Learning rate (and, for LoRA, the target modules) per PEFT method, CE only, chosen on dev at 5%, seed 1.
  S="--train_fraction 0.05 --seed 1 --results_dir docs/results/conll2003_sweep"
  for peft in lora bitfit ia3; do
    for lr in 1e-3 3e-3 1e-2; do
      $RUN --config $CFG/ce.yaml $S --set peft=$peft learning_rate=$lr name=ce_$peft
    done
  done
  for peft in bitfit ia3; do   # their best rate above was the largest tried: one more
    $RUN --config $CFG/ce.yaml $S --set peft=$peft learning_rate=3e-2 name=ce_$peft
  done
  for lr in 3e-3 1e-2; do   # LoRA on every linear layer of the encoder, r=16
    $RUN --config $CFG/ce.yaml $S --set peft=lora learning_rate=$lr lora_r=16 lora_alpha=32 \
      lora_target_modules=[query,key,value,dense] name=ce_lora
  done
fi
if [[ $part == full_sentence || $part == all ]]; then
  # CE + sentence-level RL on the full training set, same schedule and budget as the token-level full rows.
  for seed in 1 2 3; do
    $RUN --config $CFG/ce_sentence_rl.yaml --train_fraction 1.0 --seed $seed --set budget_examples=14041 rl_start_step=439
  done
fi
if [[ $part == full_peft || $part == all ]]; then
  # One seed each on the full training set, each PEFT method at its dev-chosen settings (peft_lr above).
  for peft in lora bitfit ia3; do
    P=$(python benchmarks/conll2003.py best --results_dir docs/results/conll2003_sweep --name ce_$peft)
    $RUN --config $CFG/ce.yaml --train_fraction 1.0 --seed 1 --set budget_examples=14041 $P
    $RUN --config $CFG/ce_token_rl.yaml --train_fraction 1.0 --seed 1 --set budget_examples=14041 rl_start_step=439 \
      $P name=ce_token_rl_$peft
  done
fi
E="rewards=[entity_span] reward_weights=[1.0] name=ce_token_rl_entity"
if [[ $part == entity_only || $part == all ]]; then
  # The best RL row of sweep2 on dev (entity-span reward alone, CE warm-up) beat the recommended recipe by 0.2 dev F1
  # on one seed: 3 seeds at 5% tell whether that is more than seed noise.
  for seed in 1 2 3; do
    $RUN --config $CFG/ce_token_rl.yaml --train_fraction 0.05 --seed $seed --set rl_start_step=125 $E
  done
fi
if [[ $part == lora_seeds || $part == all ]]; then
  # LoRA on the full data gained ~1 test F1 from the RL recipe with seed 1: seeds 2 and 3 of both LoRA rows.
  P=$(python benchmarks/conll2003.py best --results_dir docs/results/conll2003_sweep --name ce_lora)
  for seed in 2 3; do
    $RUN --config $CFG/ce.yaml --train_fraction 1.0 --seed $seed --set budget_examples=14041 $P
    $RUN --config $CFG/ce_token_rl.yaml --train_fraction 1.0 --seed $seed --set budget_examples=14041 rl_start_step=439 \
      $P name=ce_token_rl_lora
  done
fi
if [[ $part == entity_only_full || $part == all ]]; then
  for seed in 1 2 3; do
    $RUN --config $CFG/ce_token_rl.yaml --train_fraction 1.0 --seed $seed --set budget_examples=14041 rl_start_step=439 $E
  done
fi
