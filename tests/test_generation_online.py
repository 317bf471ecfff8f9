"""Online learning on the generation path: prompts stream in, completions are sampled and scored (tiny Llama)."""


import datasets
import pytest
import torch

from online_checks import kill_restart_and_compare
from test_generation_trainer import TOKENIZER, counts_w7, make_trainer, pays_for_w7
from tiny_lm import prompt_dataset, tiny_llama


def user_rating(prompts, completions, completion_ids, liked, **kwargs):
    """Feedback from the stream: 1.0 for every token that is the word this prompt's user likes."""
    liked_ids = TOKENIZER.convert_tokens_to_ids(liked)
    return [[1.0 if t == want else 0.0 for t in ids] for ids, want in zip(completion_ids, liked_ids)]


def _online_trainer(path, **overrides):
    values = dict(
        reward_funcs=[pays_for_w7, counts_w7], online_batch_size=4, replay_buffer_size=16, replay_batch_size=4,
        logging_steps=1, online_save_steps=3, reward_combination="normalize_then_sum", kl_coef=0.05, target_kl=0.01,
        kl_horizon=10,
    )
    values.update(overrides)
    return make_trainer(path, model=tiny_llama(seed=0), **values)


def test_killed_and_restarted_generation_run_equals_uninterrupted_run(tmp_path):
    stream = [dict(row) for row in prompt_dataset(40, seed=5)]  # 10 updates of 4 prompts (+ 4 replayed)
    seed = [dict(row) for row in prompt_dataset(12, seed=6)]

    full, restarted = kill_restart_and_compare(
        _online_trainer, stream, seed, tmp_path, tiny_llama(seed=0).state_dict(), "lm_head.weight"
    )
    # the dynamic state continued too: normaliser statistics, KL coefficient and the logged rewards
    assert restarted.reward_combiner.state_dict() == full.reward_combiner.state_dict()
    assert restarted.kl_controller.value == full.kl_controller.value
    rewards = [[h["reward"] for h in t.state.log_history if "reward" in h] for t in (full, restarted)]
    assert rewards[0] == rewards[1] and len(rewards[0]) == 10


def test_online_run_learns_from_the_feedback_on_the_new_stream(tmp_path):
    def with_liked(rows, word):
        return [dict(row, liked=word) for row in rows]

    stream = with_liked(prompt_dataset(120, seed=5), "w7")  # 15 updates of 8 new prompts; users like w7
    held_out = datasets.Dataset.from_list(with_liked(prompt_dataset(16, seed=9), "w7"))
    trainer = make_trainer(
        tmp_path, reward_funcs=[user_rating], online_batch_size=8, replay_buffer_size=32, replay_batch_size=8,
        online_eval_steps=5, logging_steps=5, learning_rate=1e-2,
    )
    start = {k: v.clone() for k, v in trainer.model.named_parameters()}
    history = trainer.learn_online(stream, eval_datasets={"new": held_out})
    curve = [h["eval_new_reward"] for h in history if "eval_new_reward" in h]
    assert len(curve) == 4  # at the start and after updates 5, 10, 15
    # the mean number of liked tokens per sampled completion on held-out prompts rises several-fold
    assert curve[0] < 0.5 and curve[-1] > max(1.0, 3 * curve[0]), curve
    assert [h["eval_new_rewards/user_rating/mean"] for h in history if "eval_new_reward" in h] == curve
    assert any(not torch.equal(v, start[k]) for k, v in trainer.model.named_parameters())
    logged = [h for h in history if "online/replayed" in h]
    assert logged[-1]["online/replayed"] == 8 and logged[-1]["online/examples_seen"] == 120


def test_online_generation_refuses_settings_it_cannot_honour(tmp_path):
    trainer = make_trainer(tmp_path, num_ppo_epochs=2)
    with pytest.raises(ValueError, match="num_ppo_epochs=2"):
        trainer.learn_online([dict(row) for row in prompt_dataset(4)])
    trainer = make_trainer(tmp_path / "b", replay_buffer_size=4, replay_batch_size=1)
    with pytest.raises(ValueError, match="has no 'prompt' column"):
        trainer.learn_online([{"text": "w1 w2"}])
    with pytest.raises(ValueError, match="needs the same columns"):
        trainer.learn_online([{"prompt": "w1"}], seed_examples=[{"prompt": "w2", "reference": "w3"}],
                             max_updates=1)
