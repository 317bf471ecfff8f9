"""Online learning: reservoir buffer, restart equals uninterrupted, and replay against forgetting (tiny BERT)."""

import random
from collections import Counter

import pytest

from online_checks import kill_restart_and_compare
from test_trainer import make_trainer
from tiny import synthetic_dataset, tiny_bert
from trl_tokenlevel.online.loop import ReservoirBuffer
from trl_tokenlevel.rewards import TokenAccuracyReward


def test_reservoir_keeps_a_uniform_sample_and_restores_exactly():
    counts = Counter()
    for seed in range(300):
        buffer = ReservoirBuffer(capacity=10, seed=seed)
        for i in range(100):
            buffer.add(i)
        counts.update(buffer.items)
    # every item kept with probability 10/100: 30 expected of 300 runs, early and late items alike
    early, late = sum(counts[i] for i in range(50)), sum(counts[i] for i in range(50, 100))
    assert abs(early - late) < 0.15 * (early + late) and len(buffer) == 10
    restored = ReservoirBuffer(capacity=1)
    restored.load_state_dict(buffer.state_dict())
    for i in range(100, 120):
        buffer.add(i)
        restored.add(i)
    assert restored.items == buffer.items and restored.sample(4) == buffer.sample(4)


def _online_trainer(path, **overrides):
    values = dict(
        reward_funcs=[TokenAccuracyReward()], online_batch_size=4, replay_buffer_size=16, replay_batch_size=4,
        logging_steps=1, online_save_steps=3, learning_rate=3e-3, num_samples=2,
    )
    values.update(overrides)
    return make_trainer(path, model=tiny_bert(seed=0), **values)


def test_killed_and_restarted_run_equals_uninterrupted_run(tmp_path):
    stream = [dict(row) for row in synthetic_dataset(40, seed=5)]  # 10 updates of 4
    seed = [dict(row) for row in synthetic_dataset(20, seed=6)]

    # dropout on, sampling on: the RNG state must come back too
    kill_restart_and_compare(_online_trainer, stream, seed, tmp_path, tiny_bert(seed=0).state_dict(), "classifier.weight")

def test_resume_without_a_checkpoint_says_how_to_fix(tmp_path):
    trainer = _online_trainer(tmp_path)
    with pytest.raises(ValueError, match="No online-checkpoint"):
        trainer.learn_online([], resume_from_checkpoint=True)


def _split_by_entity_type(n, seed):
    """`old` sentences have PER entities only, `new` ones LOC only: the stream brings an entity type never seen."""
    import datasets

    from tiny import SYNTH_LABELS, synthetic_sentence

    rng, old, new = random.Random(seed), [], []
    while len(old) < n or len(new) < n:
        tokens, tags = synthetic_sentence(rng)
        if 1 in tags and 3 not in tags and len(old) < n:
            old.append({"tokens": tokens, "ner_tags": tags})
        if 3 in tags and 1 not in tags and len(new) < n:
            new.append({"tokens": tokens, "ner_tags": tags})
    features = datasets.Features(
        {"tokens": datasets.Sequence(datasets.Value("string")),
         "ner_tags": datasets.Sequence(datasets.ClassLabel(names=SYNTH_LABELS))}
    )
    return [datasets.Dataset.from_list(rows, features=features) for rows in (old, new)]


def test_online_run_learns_the_new_stream_and_replay_limits_forgetting(tmp_path):
    from tiny import SYNTH_LABELS, word_tokenizer
    from trl_tokenlevel import TokenLevelRLConfig, TokenLevelRLTrainer

    old_train, new_stream = _split_by_entity_type(320, seed=0)  # stream: 40 updates of 8
    old_eval, new_eval = _split_by_entity_type(100, seed=1)

    def config(path, **overrides):
        return TokenLevelRLConfig(
            output_dir=str(tmp_path / path), per_device_train_batch_size=16, learning_rate=3e-3, report_to="none",
            use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0, logging_steps=10, **overrides,
        )

    def trainer(model, args):  # default compute_metrics: seqeval entity-level scores
        return TokenLevelRLTrainer(model, reward_funcs=[TokenAccuracyReward()], args=args,
                                   processing_class=word_tokenizer(), label_list=SYNTH_LABELS)

    pretrain = trainer(tiny_bert(), config("pre", rl_coef=0.0, num_train_epochs=3))
    pretrain.train_dataset = pretrain.prepare_dataset(old_train)
    pretrain.train()
    deployed = {k: v.clone() for k, v in pretrain.model.state_dict().items()}

    curves = {}
    for replay in (0, 64):
        model = tiny_bert()
        model.load_state_dict(deployed)
        online = trainer(model, config(f"online{replay}", online_batch_size=8, replay_buffer_size=replay,
                                       replay_batch_size=8, online_eval_steps=5, num_samples=2))
        history = online.learn_online(new_stream, seed_examples=old_train,
                                      eval_datasets={"old": old_eval, "new": new_eval})
        curves[replay] = {k: [h[f"eval_{k}_f1"] for h in history if f"eval_{k}_f1" in h] for k in ("old", "new")}
    no_replay, replay = curves[0], curves[64]
    assert no_replay["old"][0] == replay["old"][0] > 0.95  # the deployed model knows PER ...
    assert no_replay["new"][0] == replay["new"][0] < 0.05  # ... and has never seen LOC
    for run in (no_replay, replay):  # both learn the new entity type from the stream
        assert run["new"][-1] > 0.7, run["new"]
    old_drop = {name: run["old"][0] - run["old"][-1] for name, run in (("none", no_replay), ("replay", replay))}
    assert old_drop["none"] > 0.5 and old_drop["replay"] < 0.1, (no_replay, replay)
