"""The sentiment reward model and the independent judge of the credit-assignment benchmark (issue 11).

Build both (about 13 minutes on one core of a shared machine; measured: see the results JSON), cache them and write their accuracies:
    nice -n 10 python benchmarks/sentiment_models.py --config benchmarks/configs/sentiment_models.yaml
Use them from another script (each is rebuilt with the default config when its cache folder is missing):
    from sentiment_models import load_judge, load_reward_model   # with benchmarks/ on sys.path
    model, tokenizer = load_reward_model(attn_implementation="eager")   # eager: attention weights for ABC
    positive = load_judge().predict(texts)                              # 1 = positive

- Reward model: the packaged MiniLM (all-MiniLM-L6-v2, uncased BERT) with a fresh 2-label head, fully fine-tuned for one
  epoch on a fixed subset of SST-2 train (`train_examples` rows of train shuffled with `seed`), max_length 64, AdamW
  with linear warm-up and decay; `num_evals` checkpoints are scored on dev and the best one is kept.
- Judge: TF-IDF over word 1-2 grams + logistic regression (scikit-learn) on all of SST-2 train, `C` chosen on dev. It
  shares no weights, tokenizer or features with the reward model. Its token pattern splits contractions the way SST-2
  is tokenized (`isn't` -> `is n't`), so generated text and treebank text give the same features.
- SST-2 is PTB-tokenized (`it 's`, `does n't`, `-lrb-`); a policy writes `it's`. With `detokenize: true` the reward model
  trains and is evaluated on [`detokenize_ptb`] text, so it reads the policy's kind of text.
- Dev holds phrases of the same treebank sentences as train (GLUE's train split re-split 90/10), so dev accuracy is
  optimistic; test (the GLUE validation sentences) is the number to quote. Test is never used for a choice.

The cache lives in `.cache/sentiment_models/` at the repository root (git-ignored): `reward_model/` (a
`save_pretrained` folder with `build_info.json`) and `judge/` (`judge.joblib`, `build_info.json`).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import random
import re
import time
from pathlib import Path

import torch
import yaml


REPO_ROOT = Path(__file__).resolve().parents[1]

DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "sentiment_models"
DEFAULT_RESULTS = REPO_ROOT / "docs" / "results" / "credit_assignment" / "sentiment_models.json"
LABELS = ["negative", "positive"]
JUDGE_TOKEN_PATTERN = r"n't|'\w+|\w+(?=n't)|\w+|[!?]"
"""Words, PTB contractions (`is n't`, `it 's`) split the same way from `isn't` / `it's`, and `!` / `?`."""


@dataclasses.dataclass
class SentimentModelsConfig:
    """What is built; `benchmarks/configs/sentiment_models.yaml` holds the same values with their reasons."""

    seed: int = 0
    backbone: str = "packaged:all-MiniLM-L6-v2"
    max_length: int = 64
    train_examples: int = 30000
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    num_evals: int = 4
    log_every: int = 50
    eval_batch_size: int = 128
    detokenize: bool = True
    judge_ngram_max: int = 2
    judge_min_df: int = 1
    judge_c_grid: tuple = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
    num_threads: int = 1

    @classmethod
    def from_yaml(cls, path) -> SentimentModelsConfig:
        values = yaml.safe_load(Path(path).read_text()) or {}
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"{path}: unknown keys {unknown}. Fix: use only {[f.name for f in dataclasses.fields(cls)]}.")
        if "judge_c_grid" in values:
            values["judge_c_grid"] = tuple(values["judge_c_grid"])
        return cls(**values)


_PTB_ATTACH = re.compile(r" (n't|'s|'re|'ve|'ll|'d|'m|\.\.\.|[.,!?;:%]|''|\)|-rrb-)(?=\s|$)")


def detokenize_ptb(text: str) -> str:
    """SST-2's PTB tokenization undone: contractions and punctuation re-attached, brackets and quotes restored.

    Example:
        >>> detokenize_ptb("it 's a charming , often affecting journey -lrb- or is n't it -rrb- . ")
        "it's a charming, often affecting journey (or isn't it)."
    """
    text = _PTB_ATTACH.sub(r"\1", text.strip())
    text = text.replace("-lrb- ", "(").replace("-lrb-", "(").replace("-rrb-", ")").replace("`` ", '"').replace("''", '"')
    return re.sub(r"\s+", " ", text)


def load_splits(data_dir=None) -> dict[str, tuple[list[str], list[int]]]:
    """SST-2 as `{"train" | "validation" | "test": (sentences, labels)}` from `../shared/data/sst2` (or `data_dir`)."""
    from trl_tokenlevel.data.sst2 import load_sst2

    dataset = load_sst2(dataset_dir=data_dir)
    return {split: (list(dataset[split]["sentence"]), list(dataset[split]["label"])) for split in ("train", "validation", "test")}


def _length_grouped_batches(lengths: list[int], batch_size: int, rng: random.Random, chunk: int = 50) -> list[list[int]]:
    """Shuffled batches of similar length: sort within chunks of `chunk` batches (less padding, same data)."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    for i in range(0, len(order), batch_size * chunk):
        part = sorted(order[i : i + batch_size * chunk], key=lambda j: lengths[j])
        batches += [part[k : k + batch_size] for k in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


@torch.no_grad()
def evaluate_accuracy(model, tokenizer, sentences: list[str], labels: list[int], max_length: int, batch_size: int = 128) -> float:
    """Accuracy of `argmax(logits)` over `sentences`, read in length-sorted batches."""
    model.eval()
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    correct = 0
    for i in range(0, len(order), batch_size):
        batch = order[i : i + batch_size]
        encoding = tokenizer([sentences[j] for j in batch], truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        predictions = model(**encoding.to(model.device)).logits.argmax(-1).tolist()
        correct += sum(int(p == labels[j]) for p, j in zip(predictions, batch))
    return correct / max(len(sentences), 1)


def _prepare(config: SentimentModelsConfig, splits: dict, tokenizer) -> tuple[dict, dict]:
    """The fixed training subset and the texts the reward model reads; also how many rows its max_length cuts."""
    sentences, labels = splits["train"]
    order = list(range(len(sentences)))
    random.Random(config.seed).shuffle(order)
    order = order[: config.train_examples]
    fix = detokenize_ptb if config.detokenize else (lambda s: s)
    texts = {"train": ([fix(sentences[i]) for i in order], [labels[i] for i in order])}
    texts.update({split: ([fix(s) for s in splits[split][0]], list(splits[split][1])) for split in ("validation", "test")})
    truncated = {
        split: sum(len(ids) > config.max_length for ids in tokenizer(texts[split][0])["input_ids"]) for split in texts
    }
    return texts, truncated


def train_reward_model(config: SentimentModelsConfig, splits: dict, model=None, tokenizer=None) -> tuple:
    """Fine-tunes the reward model; returns `(model, tokenizer, info)` with the best dev checkpoint loaded.

    `model` / `tokenizer` default to the packaged MiniLM with a fresh 2-label head (tests pass tiny ones).
    """
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        get_linear_schedule_with_warmup,
        set_seed,
    )

    from trl_tokenlevel.models import resolve_model_path

    set_seed(config.seed)
    if model is None:
        path = resolve_model_path(config.backbone)
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=2, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)}, use_safetensors=True
        )
        tokenizer = AutoTokenizer.from_pretrained(path)
    texts, truncated = _prepare(config, splits, tokenizer)
    train_texts, train_labels = texts["train"]
    encoded = tokenizer(train_texts, truncation=True, max_length=config.max_length)["input_ids"]
    batches = _length_grouped_batches([len(ids) for ids in encoded], config.batch_size, random.Random(config.seed))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * len(batches)), len(batches))
    eval_steps = sorted({round(len(batches) * (k + 1) / config.num_evals) for k in range(config.num_evals)})
    curve, best, start = [], (-1.0, 0, None), time.time()
    for step, batch in enumerate(batches, start=1):
        model.train()
        inputs = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt").to(model.device)
        loss = model(**inputs, labels=torch.tensor([train_labels[i] for i in batch], device=model.device)).loss
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        if step % config.log_every == 0:
            rate = step * config.batch_size / (time.time() - start)
            print(f"[reward model] step {step}/{len(batches)} loss {loss.item():.4f} ({rate:.1f} examples/s)", flush=True)
        if step in eval_steps:
            dev = evaluate_accuracy(model, tokenizer, *texts["validation"], config.max_length, config.eval_batch_size)
            curve.append({"step": step, "train_loss": round(loss.item(), 4), "dev_accuracy": dev, "seconds": round(time.time() - start, 1)})
            print(f"[reward model] step {step}/{len(batches)} dev accuracy {dev:.4f} ({time.time() - start:.0f} s)", flush=True)
            if dev > best[0]:
                best = (dev, step, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    test = evaluate_accuracy(model, tokenizer, *texts["test"], config.max_length, config.eval_batch_size)
    info = {
        "dev_accuracy": best[0], "test_accuracy": test, "selected_step": best[1], "steps": len(batches),
        "train_examples": len(train_texts), "dev_curve": curve, "rows_longer_than_max_length": truncated,
        "train_seconds": round(time.time() - start, 1),
    }
    return model.eval(), tokenizer, info


def train_judge(config: SentimentModelsConfig, splits: dict) -> tuple:
    """TF-IDF (word 1..`judge_ngram_max` grams) + logistic regression on all of train, `C` chosen on dev."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    start = time.time()
    (train_x, train_y), (dev_x, dev_y), (test_x, test_y) = (splits[s] for s in ("train", "validation", "test"))
    vectorizer = TfidfVectorizer(
        ngram_range=(1, config.judge_ngram_max), min_df=config.judge_min_df, sublinear_tf=True, token_pattern=JUDGE_TOKEN_PATTERN
    )
    train_features, dev_features = vectorizer.fit_transform(train_x), vectorizer.transform(dev_x)
    grid, best = {}, None
    for c in config.judge_c_grid:
        classifier = LogisticRegression(C=c, solver="liblinear", max_iter=1000, random_state=config.seed)
        classifier.fit(train_features, train_y)
        grid[str(c)] = float((classifier.predict(dev_features) == dev_y).mean())
        if best is None or grid[str(c)] > grid[str(best[0])]:
            best = (c, classifier)
    judge = Pipeline([("tfidf", vectorizer), ("logreg", best[1])])
    info = {
        "C": best[0], "dev_accuracy_by_C": grid, "dev_accuracy": grid[str(best[0])],
        "test_accuracy": float((judge.predict(test_x) == test_y).mean()), "features": len(vectorizer.vocabulary_),
        "train_examples": len(train_x), "seconds": round(time.time() - start, 1),
    }
    return judge, info


def build_reward_model(config: SentimentModelsConfig, cache_dir=DEFAULT_CACHE_DIR, splits=None, model=None, tokenizer=None) -> dict:
    """Trains the reward model and saves it under `cache_dir/reward_model`; returns its build info."""
    model, tokenizer, info = train_reward_model(config, splits or load_splits(), model, tokenizer)
    folder = Path(cache_dir) / "reward_model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    info = {"config": dataclasses.asdict(config), **info}
    (folder / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def build_judge(config: SentimentModelsConfig, cache_dir=DEFAULT_CACHE_DIR, splits=None) -> dict:
    """Trains the judge and saves it under `cache_dir/judge`; returns its build info."""
    import joblib

    judge, info = train_judge(config, splits or load_splits())
    folder = Path(cache_dir) / "judge"
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(judge, folder / "judge.joblib")
    info = {"config": dataclasses.asdict(config), **info}
    (folder / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def load_reward_model(cache_dir=DEFAULT_CACHE_DIR, build_if_missing: bool = True, **model_kwargs) -> tuple:
    """`(model, tokenizer)` of the cached reward model (label 1 = positive), built first when missing.

    `model_kwargs` go to `from_pretrained` (e.g. `attn_implementation="eager"` for [`AttentionCreditReward`]).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(cache_dir) / "reward_model"
    if not (folder / "build_info.json").is_file():
        if not build_if_missing:
            raise FileNotFoundError(f"No reward model in {folder}. Fix: run `python benchmarks/sentiment_models.py`.")
        build_reward_model(SentimentModelsConfig(), cache_dir)
    model = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True, **model_kwargs)
    return model.eval(), AutoTokenizer.from_pretrained(folder)


def load_judge(cache_dir=DEFAULT_CACHE_DIR, build_if_missing: bool = True):
    """The cached judge, a scikit-learn `Pipeline` (`predict(texts)` -> 0/1, `predict_proba`), built first when missing."""
    import joblib

    path = Path(cache_dir) / "judge" / "judge.joblib"
    if not path.is_file():
        if not build_if_missing:
            raise FileNotFoundError(f"No judge at {path}. Fix: run `python benchmarks/sentiment_models.py`.")
        build_judge(SentimentModelsConfig(), cache_dir)
    return joblib.load(path)


def write_results(results_path, reward_model_info: dict, judge_info: dict, config: SentimentModelsConfig) -> dict:
    """Writes the accuracies of both models, the config and the seed (the committed JSON)."""
    import sklearn
    import transformers

    pick = ("dev_accuracy", "test_accuracy")
    results = {
        "config": dataclasses.asdict(config), "seed": config.seed,
        "reward_model": {k: v for k, v in reward_model_info.items() if k != "config"},
        "judge": {k: v for k, v in judge_info.items() if k != "config"},
        "summary": {name: {k: round(info[k], 4) for k in pick} for name, info in (("reward_model", reward_model_info), ("judge", judge_info))},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "scikit-learn": sklearn.__version__},
        "command": "nice -n 10 python benchmarks/sentiment_models.py --config benchmarks/configs/sentiment_models.yaml",
    }
    Path(results_path).parent.mkdir(parents=True, exist_ok=True)
    Path(results_path).write_text(json.dumps(results, indent=2) + "\n")
    return results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="YAML with SentimentModelsConfig fields (defaults: the dataclass)")
    parser.add_argument("--cache_dir", default=str(DEFAULT_CACHE_DIR))
    parser.add_argument("--results", default=str(DEFAULT_RESULTS))
    parser.add_argument("--data_dir", help="SST-2 folder (default: ../shared/data/sst2)")
    args = parser.parse_args(argv)
    config = SentimentModelsConfig.from_yaml(args.config) if args.config else SentimentModelsConfig()
    torch.set_num_threads(config.num_threads)  # the build's CPU budget; a library call leaves threads alone
    splits = load_splits(args.data_dir)
    judge_info = build_judge(config, args.cache_dir, splits)
    print(f"[judge] C={judge_info['C']} dev {judge_info['dev_accuracy']:.4f} test {judge_info['test_accuracy']:.4f}", flush=True)
    reward_model_info = build_reward_model(config, args.cache_dir, splits)
    results = write_results(args.results, reward_model_info, judge_info, config)
    print(json.dumps(results["summary"], indent=2))
    return results


if __name__ == "__main__":
    main()
