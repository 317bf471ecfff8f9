"""Peak memory of fp32 vs 8-bit (and 4-bit) backbones: LoRA training step (forward + backward) on CPU or GPU.

    python benchmarks/memory.py --output docs/memory.json            # MiniLM and SmolLM2, fp32 / 8-bit / 4-bit

Every configuration runs in a fresh subprocess, so peak figures do not leak between them. On CPU the figure is the
process's peak resident set size (`ru_maxrss`: weights, activations, gradients, the Python/torch runtime and the
pages of the weight file read while loading); the RSS of a process that only imported torch and transformers is
reported as well. On a GPU it is `torch.cuda.max_memory_allocated`.

Workloads (identical for every precision; LoRA r=8 on the attention query/value projections, head trainable):
- MiniLM (packaged all-MiniLM-L6-v2, 22.6M params): token classification, 9 labels, batch 32 x 128 tokens.
- SmolLM2-135M-Instruct (Llama, 30 layers): causal LM loss, batch 8 x 128 tokens. The packaged GGUF file is
  dequantized once and saved as a normal fp32 folder in ~/.cache/trl_tokenlevel/ (outside the repository), from
  which every precision loads; 8-bit/4-bit load it through `BitsAndBytesConfig`.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time


ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's trl_tokenlevel, also in the worker subprocesses
CACHE = pathlib.Path(os.environ.get("TRL_TOKENLEVEL_CACHE", pathlib.Path.home() / ".cache" / "trl_tokenlevel"))
SMOLLM2_DIR = CACHE / "SmolLM2-135M-Instruct-fp32"
PRECISIONS = ("fp32", "8bit", "4bit")
MODELS = {"minilm": dict(batch=32, length=128), "smollm2": dict(batch=8, length=128)}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def smollm2_folder() -> pathlib.Path:
    """Dequantizes the packaged GGUF SmolLM2 once and saves it as a normal folder (see ENVIRONMENT notes)."""
    if (SMOLLM2_DIR / "config.json").exists():
        return SMOLLM2_DIR
    from trl_tokenlevel.models.packaged import load_smollm2

    model, tokenizer = load_smollm2()  # dequantised to fp32, saveable
    model.save_pretrained(SMOLLM2_DIR)
    tokenizer.save_pretrained(SMOLLM2_DIR)
    return SMOLLM2_DIR


def worker(model_name: str, precision: str, device: str) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model

    from trl_tokenlevel.models.quantization import check_quantization_support, prepare_quantized_model, quantization_config

    torch.manual_seed(0)
    baseline = rss_mb()
    use_cpu = device == "cpu"
    check_quantization_support(precision == "8bit", precision == "4bit", use_cpu=use_cpu)
    kwargs = dict(quantization_config=quantization_config(precision == "8bit", precision == "4bit"))
    if not use_cpu:
        kwargs["device_map"] = {"": 0}
    shape = MODELS[model_name]
    if model_name == "minilm":
        from transformers import AutoModelForTokenClassification

        from trl_tokenlevel.models import packaged_minilm_path

        model = AutoModelForTokenClassification.from_pretrained(packaged_minilm_path(), num_labels=9, **kwargs)
        task, targets = "TOKEN_CLS", ["query", "value"]
    else:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(SMOLLM2_DIR, **kwargs)
        task, targets = "CAUSAL_LM", ["q_proj", "v_proj"]
    if use_cpu is False and precision == "fp32":
        model = model.to("cuda")
    footprint_mb = model.get_memory_footprint() / 2**20
    lora = LoraConfig(task_type=task, r=8, lora_alpha=16, target_modules=targets)
    model = get_peft_model(prepare_quantized_model(model, lora), lora)
    after_load = rss_mb()
    device_t = "cpu" if use_cpu else "cuda"
    input_ids = torch.randint(5, 1000, (shape["batch"], shape["length"]), device=device_t)
    labels = torch.randint(0, 9, input_ids.shape, device=device_t) if model_name == "minilm" else input_ids
    if not use_cpu:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    output = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), labels=labels)
    output.loss.backward()
    step_s = time.perf_counter() - start
    result = dict(model=model_name, precision=precision, device=device, weights_mb=round(footprint_mb, 1),
                  baseline_rss_mb=round(baseline, 1), rss_after_load_mb=round(after_load, 1),
                  peak_rss_mb=round(rss_mb(), 1), step_s=round(step_s, 2), loss=round(float(output.loss), 4))
    if not use_cpu:
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--output", default=None, help="JSON file for the results.")
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        smollm2_folder()
        return
    if args.worker:
        print("RESULT " + json.dumps(worker(*args.worker, args.device)))
        return
    if "smollm2" in args.models:
        subprocess.run([sys.executable, __file__, "--prepare"], check=True)
    results = []
    for model_name in args.models:
        for precision in args.precisions:
            run = subprocess.run([sys.executable, __file__, "--device", args.device, "--worker", model_name, precision],
                                 capture_output=True, text=True)
            lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
            if run.returncode or not lines:
                error = (run.stderr.strip().splitlines() or ["?"])[-1]
                results.append(dict(model=model_name, precision=precision, device=args.device, error=error))
            else:
                results.append(json.loads(lines[-1][len("RESULT "):]))
            print(json.dumps(results[-1]), flush=True)
    if args.output:
        pathlib.Path(args.output).write_text(json.dumps(results, indent=2) + "\n")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
