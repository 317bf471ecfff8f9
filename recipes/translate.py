"""Multi30k English-German translation: a supervised warm-up, then token-level RL, scored with sacreBLEU.

    warm-up   a few cross-entropy steps on (prompt, reference) pairs (a plain `transformers.Trainer`; LoRA merged after)
    RL        K sampled translations per source; reward per token = the reference character n-grams it completes
              (`CharNgramOverlapReward`, chrF-style recall), or one sentence chrF per translation (`--reward chrf`,
              the sequence-level arm); KL to the warmed-up model (fresh LoRA, adapters disabled = reference)
    eval      greedy translations of fixed subsets of val (the dev set) and test_2016_flickr: corpus BLEU and chrF
              (sacreBLEU), after the warm-up and after RL; the sacreBLEU signatures go in the report

Model: the packaged SmolLM2-135M-Instruct (decoder-only, prompted with a translation instruction in its chat
template; it was not trained for German) with LoRA by default, or any causal or encoder-decoder model passed with
`--model_name_or_path` (T5, Marian, mBART, NLLB: plain-text prompts, `--source_prefix` for T5).

    OMP_NUM_THREADS=1 python recipes/translate.py --config recipes/configs/translate.yaml
    python recipes/translate.py --config recipes/configs/translate.yaml --model_name_or_path Helsinki-NLP/opus-mt-en-de

One warm-up, several RL runs from it (what benchmarks/translation.py does):

    python recipes/translate.py ... --skip_rl true --warm_up_output_dir warm/           # warm-up + its scores only
    python recipes/translate.py ... --model_name_or_path warm/ --sft_max_steps 0 --eval_before_rl false

Every field of `ScriptArguments`, `GenerationRLConfig` and `TokenLevelModelConfig` (TRL's `ModelConfig`:
`--model_name_or_path`, `--use_peft`, `--lora_r`, ...) is a flag and a YAML key. Outputs in `output_dir`, as the other
recipes write them: `eval_results.json` (val) and `predict_results.json` (test) with `eval_bleu`, `eval_chrf`, ...,
`all_results.json`, `trainer_state.json`, the model (merged LoRA at the top with `merge_adapters`, the adapter in
`adapter/`), a model card and `training_args.json`; `results.json` has the scores before and after RL and every
greedy translation. With `--skip_rl` the warmed-up model is saved as a plain folder (no trainer, no card).
`--resume_from_checkpoint` resumes the RL phase; the warm-up before it runs again (seeded, so the same), unless the
run starts from a saved warm-up (`--model_name_or_path DIR --sft_max_steps 0`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

import trl_tokenlevel  # noqa: F401, I001  (first: its import filters known upstream noise before transformers loads it)
import datasets
import torch
from peft import get_peft_model
from transformers import (
    DataCollatorForSeq2Seq,
    Trainer,
    TrainingArguments,
)
from trl import TrlParser

from trl_tokenlevel import GenerationRLConfig, TokenLevelModelConfig, TokenLevelRLTrainer
from trl_tokenlevel.data import load_multi30k, translation_prompt
from trl_tokenlevel.generation.evaluate import greedy_completions
from trl_tokenlevel.generation.reports import log_and_save, write_results_json
from trl_tokenlevel.generation.rollout import render_prompts
from trl_tokenlevel.hub import merge_adapters
from trl_tokenlevel.metrics import generation_scores, metric_signatures
from trl_tokenlevel.rewards import CharNgramOverlapReward, ChrFReward, LengthPenalty
from trl_tokenlevel.run_identity import resume_argument


@dataclass
class ScriptArguments:
    data_dir: str | None = field(default=None, metadata={"help": "Multi30k raw files. Default: ../shared/data/multi30k."})
    source_lang: str = field(default="en", metadata={"help": "Source language code."})
    target_lang: str = field(default="de", metadata={"help": "Target language code."})
    source_prefix: str = field(default="", metadata={"help": "Encoder-decoder prompts only: e.g. 'translate English to German: ' for T5."})
    max_train_samples: int = field(default=512, metadata={"help": "First N training pairs: warm-up and RL prompts."})
    max_eval_samples: int = field(default=100, metadata={"help": "Fixed evaluation subsets: the first N pairs of each split."})
    eval_splits: list[str] = field(
        default_factory=lambda: ["validation", "test"],
        metadata={"help": "Splits scored: 'validation' (val, the dev set: make choices on it) and/or 'test' (test_2016_flickr)."},
    )
    eval_max_new_tokens: int = field(default=48, metadata={"help": "Length cap of the greedy evaluation translations."})
    sft_max_steps: int = field(default=20, metadata={"help": "Warm-up cross-entropy steps; 0 skips the warm-up."})
    sft_learning_rate: float = field(default=5e-4, metadata={"help": "Warm-up learning rate."})
    sft_batch_size: int = field(default=8, metadata={"help": "Warm-up pairs per step."})
    warm_up_output_dir: str | None = field(
        default=None, metadata={"help": "Also save the warmed-up model (LoRA merged) here: later runs start from it with "
                                        "--model_name_or_path DIR --sft_max_steps 0."},
    )
    skip_rl: bool = field(default=False, metadata={"help": "Warm up and score only (the supervised baseline)."})
    eval_before_rl: bool = field(
        default=True, metadata={"help": "Score the model before RL too; False skips it when it was scored already."}
    )
    reward: str = field(
        default="char_ngram", metadata={"help": "'char_ngram' (per token) or 'chrf' (per sentence).", "choices": ["char_ngram", "chrf"]}
    )
    length_penalty_after: int = field(
        default=0, metadata={"help": "With > 0, -length_penalty on every token after this many (recall pays length)."}
    )
    length_penalty: float = field(default=0.02, metadata={"help": "Per-token penalty past length_penalty_after."})
    results_path: str | None = field(default=None, metadata={"help": "Report JSON. Default: OUTPUT_DIR/results.json."})


def build_rows(split: datasets.Dataset, tokenizer, encoder_decoder: bool, args: ScriptArguments) -> datasets.Dataset:
    """`prompt` (chat messages for a causal LM with a chat template, else text) and `target` (the reference)."""
    chat = not encoder_decoder and getattr(tokenizer, "chat_template", None) is not None
    prefix = args.source_prefix if not chat else ""
    prompts = [translation_prompt(s, args.source_lang, args.target_lang, chat=chat, prefix=prefix) for s in split["source"]]
    return datasets.Dataset.from_dict({"prompt": prompts, "target": list(split["target"])})


GENERATION_PEFT_METHODS = ("none", "lora", "bitfit", "ia3", "ln_tuning")
"""Prompt tuning is left out: the warm-up merges its adapter into the weights, which prompt tuning has none of."""


def peft_for(model, encoder_decoder: bool, model_args: TokenLevelModelConfig):
    """`(model, peft_config)` of `--use_peft` / `--peft` for this model (LoRA targets: PEFT's table unless given)."""
    return model_args.prepare_peft(model, "SEQ_2_SEQ_LM" if encoder_decoder else "CAUSAL_LM", head_module_names=(),
                                   methods=GENERATION_PEFT_METHODS)


def supervised_features(rows: datasets.Dataset, tokenizer, encoder_decoder: bool, max_length: int) -> datasets.Dataset:
    """Cross-entropy features: encoder input + `labels` (encoder-decoder), or prompt + reference + EOS with the
    prompt's labels set to -100 (causal LM; the prompt is rendered exactly as the rollout renders it)."""
    texts, templated = render_prompts(list(rows["prompt"]), tokenizer)
    features = []
    for text, target in zip(texts, rows["target"]):
        if encoder_decoder:
            encoded = tokenizer(text, truncation=True, max_length=max_length)
            labels = tokenizer(text_target=target, truncation=True, max_length=max_length)["input_ids"]
            features.append({**encoded, "labels": labels})
            continue
        prompt_ids = tokenizer(text, add_special_tokens=not templated)["input_ids"]
        target_ids = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = (prompt_ids + target_ids)[-max_length:]
        labels = ([-100] * len(prompt_ids) + target_ids)[-max_length:]
        features.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return datasets.Dataset.from_list(features)


def warm_up(model, tokenizer, rows, encoder_decoder: bool, args: ScriptArguments, rl_args: GenerationRLConfig):
    """A few supervised steps; returns the model (LoRA merged into the weights) and the logged losses."""
    if args.sft_max_steps <= 0:
        return model, []
    features = supervised_features(rows, tokenizer, encoder_decoder, rl_args.max_prompt_length or 512)
    sft_args = TrainingArguments(
        output_dir=os.path.join(rl_args.output_dir, "warm_up"), max_steps=args.sft_max_steps,
        learning_rate=args.sft_learning_rate, per_device_train_batch_size=args.sft_batch_size, logging_steps=1,
        lr_scheduler_type="constant", save_strategy="no", report_to="none", use_cpu=rl_args.use_cpu,
        seed=rl_args.seed, disable_tqdm=True,
    )
    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)
    trainer = Trainer(model=model, args=sft_args, train_dataset=features, data_collator=collator)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return merge_adapters(trainer.model, in_place=True), losses


def evaluate(model, tokenizer, splits: dict[str, datasets.Dataset], args: ScriptArguments, rl_args: GenerationRLConfig):
    """`({split: scores}, {split: greedy translations})` for each evaluation split."""
    scores, predictions = {}, {}
    for split, rows in splits.items():
        start = time.time()
        predictions[split] = greedy_completions(
            model, tokenizer, list(rows["prompt"]), args.eval_max_new_tokens, batch_size=16,
            max_prompt_length=rl_args.max_prompt_length,
        )
        scores[split] = generation_scores(predictions[split], list(rows["target"]))
        scores[split]["seconds"] = time.time() - start
        print(f"{split}: " + json.dumps(scores[split]), flush=True)
    return scores, predictions


def rewards_for(tokenizer, args: ScriptArguments) -> list:
    rewards = [CharNgramOverlapReward(tokenizer, reference_column="target") if args.reward == "char_ngram"
               else ChrFReward(reference_column="target")]
    if args.length_penalty_after > 0:
        rewards.append(LengthPenalty(args.length_penalty_after, args.length_penalty))
    return rewards


def main(args: ScriptArguments, rl_args: GenerationRLConfig, model_args: TokenLevelModelConfig) -> dict:
    results_path = args.results_path or os.path.join(rl_args.output_dir, "results.json")
    unknown = sorted(set(args.eval_splits) - {"validation", "test"})
    if unknown or not args.eval_splits:
        raise ValueError(f"--eval_splits {args.eval_splits}: choose 'validation' (val, the dev set) and/or 'test'.")
    data = load_multi30k(args.data_dir, source_lang=args.source_lang, target_lang=args.target_lang,
                         max_train_samples=args.max_train_samples, max_eval_samples=args.max_eval_samples)
    torch.manual_seed(rl_args.seed)
    model, tokenizer = model_args.load_generation_model(use_cpu=rl_args.use_cpu)
    encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
    train = build_rows(data["train"], tokenizer, encoder_decoder, args)
    splits = {split: build_rows(data[split], tokenizer, encoder_decoder, args) for split in args.eval_splits}
    sizes = ", ".join(f"first {len(rows)} of {split}" for split, rows in splits.items())
    print(f"train: {len(train)} pairs; eval: {sizes}; encoder-decoder: {encoder_decoder}")

    model, peft_config = peft_for(model, encoder_decoder, model_args) if args.sft_max_steps > 0 else (model, None)
    start = time.time()
    model, sft_losses = warm_up(
        get_peft_model(model, peft_config) if peft_config else model, tokenizer, train, encoder_decoder, args, rl_args
    )
    sft_seconds = time.time() - start
    if args.warm_up_output_dir:
        model.save_pretrained(args.warm_up_output_dir)
        tokenizer.save_pretrained(args.warm_up_output_dir)
        print(f"saved the warmed-up model to {args.warm_up_output_dir}")
    sft, sft_texts = evaluate(model, tokenizer, splits, args, rl_args) if args.eval_before_rl or args.skip_rl else ({}, {})

    rl, rl_texts, steps, train_seconds, log_history, trainer, train_result = {}, {}, 0, 0.0, [], None, None
    if args.skip_rl:  # the supervised baseline: a plain folder
        model.save_pretrained(rl_args.output_dir)
        tokenizer.save_pretrained(rl_args.output_dir)
    else:
        model, rl_peft_config = peft_for(model, encoder_decoder, model_args)
        trainer = TokenLevelRLTrainer(  # fresh LoRA on the warmed-up weights: they are the KL reference
            model=model, reward_funcs=rewards_for(tokenizer, args), args=rl_args, train_dataset=train,
            processing_class=tokenizer, peft_config=rl_peft_config,
        )
        start = time.time()
        train_result = trainer.train(resume_from_checkpoint=resume_argument(rl_args.resume_from_checkpoint))
        train_seconds, steps, log_history = time.time() - start, trainer.state.global_step, trainer.state.log_history
        rl, rl_texts = evaluate(trainer.model, tokenizer, splits, args, rl_args)
    config = {"script": vars(args), "model": vars(model_args), "training": rl_args.to_dict()}
    results = {
        "sft": sft, "rl": rl, "sft_losses": sft_losses, "sft_seconds": sft_seconds, "signatures": metric_signatures(),
        "encoder_decoder": encoder_decoder, "train_seconds": train_seconds, "train_pairs": len(train),
        "eval_pairs": {split: len(rows) for split, rows in splits.items()}, "steps": steps, "log_history": log_history,
        "config": json.loads(json.dumps(config, default=str)),
        "predictions": {phase: texts for phase, texts in (("sft", sft_texts), ("rl", rl_texts)) if texts},
    }
    write_results_json(results, results_path)  # first: a failed save or upload below keeps the scores
    if trainer is not None:
        # eval_/predict_ scores into trainer.log and *_results.json; model, card, training_args.json; --push_to_hub
        log_and_save(trainer, rl, {split: len(rows) for split, rows in splits.items()},
                     {**train_result.metrics, "train_samples": len(train)},
                     dataset_name=None if args.data_dir else "bentrevett/multi30k")
    phases = [(name, scores) for name, scores in (("warm-up", sft), ("+ RL", rl)) if scores]
    for split in splits:
        print(f"\n{split}\n| metric | " + " | ".join(name for name, _ in phases) + " |\n|---|" + "---|" * len(phases))
        for key in ("bleu", "chrf", "length_ratio", "mean_words"):
            print(f"| {key} | " + " | ".join(f"{scores[split][key]:.2f}" for _, scores in phases) + " |")
    print(f"saved the model to {rl_args.output_dir}; report in {results_path}")
    return results


if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, GenerationRLConfig, TokenLevelModelConfig))
    main(*parser.parse_args_and_config())
