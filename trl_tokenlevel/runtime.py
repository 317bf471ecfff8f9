"""Run-time hygiene, in one place: known upstream noise filtered at import, INFO logs from the main process only,
and multi-process launches that would not really be distributed refused before training starts.

Filtered (each is harmless here, and printed on every first run):

- bitsandbytes on an AVX512 CPU: "Failed to load CPU gemm_4bit_forward from kernels-community" (the optional
  `kernels` package is absent; bitsandbytes falls back to its own 4-bit CPU kernel);
- transformers: the FutureWarning "`is_gradient_checkpointing` is deprecated", raised by upstream code, not ours;
- torch: "'pin_memory' argument is set as true but no accelerator is found" (Trainer pins by default; on CPU
  pinning is a no-op).

Set `TRL_TOKENLEVEL_SHOW_UPSTREAM_NOISE=1` to see them. Messages printed before `trl_tokenlevel` is imported (e.g. by
`import peft` first) cannot be filtered from here.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping


SHOW_NOISE_ENV = "TRL_TOKENLEVEL_SHOW_UPSTREAM_NOISE"
NOISY_LOG_MESSAGES = {
    "bitsandbytes.backends.cpu.ops": "Failed to load CPU gemm_4bit_forward from kernels-community",
}
"""Logger name -> start of a message from it that is dropped."""
NOISY_WARNINGS = (
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated"),
    (UserWarning, r"'pin_memory' argument is set as true but no accelerator is found"),
)
"""(category, message regex) of the Python warnings that are ignored."""


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def filter_upstream_noise() -> None:
    """Installs the filters listed in the module docstring (idempotent); a no-op when
    `TRL_TOKENLEVEL_SHOW_UPSTREAM_NOISE=1`."""
    if os.environ.get(SHOW_NOISE_ENV, "0") not in ("", "0", "false", "False"):
        return
    for name, prefix in NOISY_LOG_MESSAGES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessage) and f.prefix == prefix for f in logger.filters):
            logger.addFilter(_DropMessage(prefix))
    for category, message in NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


def setup_script_logging(args, fmt: str = "%(asctime)s %(name)s %(levelname)s %(message)s") -> int:
    """Logging for a recipe: INFO on the main process, WARNING on the others (so every line prints once under
    `accelerate launch`), for the root logger, the script's loggers and `trl_tokenlevel`. `transformers` and `datasets`
    keep their own (WARNING) verbosity unless `--log_level` / `--log_level_replica` is given, as in `run_ner.py`.

    Args:
        args (`TrainingArguments`): `should_log` tells the main process; `--log_level` / `--log_level_replica`
            (when not `"passive"`) override INFO / WARNING.
        fmt (`str`): the log line format.

    Returns:
        `int`: the level set for this process.
    """
    import datasets
    import transformers

    explicit = args.log_level if args.should_log else args.log_level_replica
    level = logging.INFO if args.should_log else logging.WARNING
    if explicit not in (None, "passive"):
        level = logging.getLevelName(str(explicit).upper())
        # only when asked: at INFO, transformers prints every config and file it saves
        transformers.utils.logging.set_verbosity(level)
        datasets.utils.logging.set_verbosity(level)
    logging.basicConfig(level=level, format=fmt, force=True)
    logging.getLogger("trl_tokenlevel").setLevel(level)
    return level


def check_distributed_launch(args, environ: Mapping[str, str] | None = None) -> None:
    """Refuses a launch whose processes would not form one distributed run.

    `accelerate launch` / `torchrun` start `WORLD_SIZE` processes; if the training arguments then set up a
    single-process run (typically on a machine without a GPU, with a multi-GPU Accelerate config and
    `use_cpu=False`), each process trains its own copy, with the per-epoch steps of a single process, and all write
    the same `output_dir`.

    Args:
        args (`TrainingArguments`): the run's arguments (`world_size` is read, which sets up the devices).
        environ (`Mapping[str, str]`, *optional*): the environment; default `os.environ`.

    Raises:
        `RuntimeError`: with the launched and the effective number of processes, and the fix.
    """
    environ = os.environ if environ is None else environ
    launched = int(environ.get("WORLD_SIZE", "1") or 1)
    if launched > 1 and args.world_size != launched:
        raise RuntimeError(
            f"This process is one of WORLD_SIZE={launched} launched processes (accelerate launch / torchrun), but the "
            f"training arguments set up a run of {args.world_size} process(es) (use_cpu={args.use_cpu}, device "
            f"{args.device}): every process would train its own copy and write the same output_dir "
            f"({args.output_dir}). Fix: on CPU, pass `--use_cpu true` (or set ACCELERATE_USE_CPU=1) for DDP over gloo; "
            "or start a single process with `python script.py ...`."
        )


def write_resolved_config(output_dir: str, training_args, script_args=None, model_args=None) -> None:
    """`<output_dir>/resolved_config.yaml`: every argument a recipe ran with (`script`, `model`, `training`), values
    that YAML cannot hold written as strings, so the run can be read back and repeated."""
    import dataclasses
    import json

    import yaml

    resolved = {}
    if script_args is not None:
        resolved["script"] = dataclasses.asdict(script_args)
    if model_args is not None:
        resolved["model"] = dataclasses.asdict(model_args)
    resolved["training"] = training_args.to_dict()
    with open(f"{output_dir}/resolved_config.yaml", "w") as handle:
        yaml.safe_dump(json.loads(json.dumps(resolved, default=str)), handle, sort_keys=False)
