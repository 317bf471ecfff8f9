"""The kill-and-restart check shared by the token-classification and generation online-learning tests."""

import os

import torch

from trl_tokenlevel.online.loop import ONLINE_CHECKPOINT_PREFIX


def kill_restart_and_compare(make_trainer, stream, seed_examples, tmp_path, start_state, moved_key):
    """Runs `stream` uninterrupted, then again "killed" after 4 updates and resumed in a fresh trainer from the
    checkpoint of update 3. Asserts the two runs end bit-identical (weights and Adam step counts), that the resumed run
    saw every example once, and that `moved_key` left `start_state`. Returns `(full, restarted)` for further checks."""
    full = make_trainer(tmp_path / "full")
    full.learn_online(stream, seed_examples=seed_examples)
    assert full.state.global_step == 10

    first = make_trainer(tmp_path / "split")
    first.learn_online(stream, seed_examples=seed_examples, max_updates=4)  # "killed" after 4 updates; last save at 3
    assert sorted(os.listdir(tmp_path / "split")) == [f"{ONLINE_CHECKPOINT_PREFIX}-3", f"{ONLINE_CHECKPOINT_PREFIX}-4"]
    del first
    restarted = make_trainer(tmp_path / "split")  # a fresh trainer and model, as after a crash
    restarted.learn_online(stream, resume_from_checkpoint=str(tmp_path / "split" / f"{ONLINE_CHECKPOINT_PREFIX}-3"))
    assert restarted.state.global_step == 10
    seen = [h["online/examples_seen"] for h in restarted.state.log_history if "online/examples_seen" in h]
    assert seen == list(range(4, 41, 4))  # no example applied twice, none skipped

    for name, value in full.model.state_dict().items():
        torch.testing.assert_close(restarted.model.state_dict()[name], value, rtol=0, atol=0, msg=name)
    assert not torch.equal(full.model.state_dict()[moved_key], start_state[moved_key])
    # the optimizer state came back too: Adam step counts equal
    assert restarted.optimizer.state_dict()["state"][0]["step"] == full.optimizer.state_dict()["state"][0]["step"] == 10
    return full, restarted
