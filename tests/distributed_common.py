"""What both one-step scripts launched by tests/test_distributed.py do around `trainer.train()`: record each rank's
own metric sums before the cross-rank reduction, then write every rank's log and rank 0's parameters."""

import json
import os

import torch


def spy_local_metrics(trainer, keys) -> dict:
    """Returns a dict filled during training with `key -> [sum, count]` of this rank's own values for `keys`."""
    local = {}
    record = trainer.record_metric

    def spy(key, value_sum, count):
        if key in keys:
            value, total = local.get(key, (0.0, 0.0))
            local[key] = [value + float(value_sum), total + float(count)]
        record(key, value_sum, count)

    trainer.record_metric = spy
    return local


def write_step_outputs(trainer, out_dir: str, local: dict) -> None:
    """`log_rank{i}.json` (world size, first logged entry, this rank's local sums) on every rank; `params.pt` on rank 0."""
    rank = trainer.accelerator.process_index
    with open(os.path.join(out_dir, f"log_rank{rank}.json"), "w") as handle:
        json.dump({"world_size": trainer.accelerator.num_processes, "log": trainer.state.log_history[0], "local": local}, handle)
    if rank == 0:
        model = trainer.accelerator.unwrap_model(trainer.model)
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, os.path.join(out_dir, "params.pt"))
