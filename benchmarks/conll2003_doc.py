"""Rewrites the CoNLL-2003 section of docs/benchmarks.md from the JSONs in docs/results/.

    python benchmarks/conll2003_doc.py

The tables come from `conll2003.py summarize`, the best model's report from `conll2003.py report`, and every number
in the prose (differences of means, per-seed differences, RL-phase statistics of the training logs) is computed here
from the same JSONs and filled into `benchmarks/conll2003_doc_template.md`, so the text cannot drift from the results.
"""

from __future__ import annotations

import contextlib
import functools
import io
import statistics
from pathlib import Path

import conll2003  # benchmarks/conll2003.py, this script's folder


ROOT = Path(__file__).resolve().parents[1]
RESULTS = str(ROOT / "docs" / "results" / "conll2003")
SWEEP = str(ROOT / "docs" / "results" / "conll2003_sweep")
PEFT_METHODS = ("lora", "bitfit", "ia3")


def table(results_dir: str = RESULTS, names=None, fractions=None) -> str:
    with contextlib.redirect_stdout(io.StringIO()):
        return conll2003.summarize(results_dir, None, names, fractions)


@functools.cache
def _results(results_dir: str) -> tuple[dict, ...]:
    return tuple(conll2003.load_results(results_dir))  # read once: every number below comes from these


def runs(name: str, fraction: float, results_dir: str = RESULTS) -> list[dict]:
    return [r for r in _results(results_dir) if r["name"] == name and r["train_fraction"] == fraction]


def mean_test_f1(name: str, fraction: float) -> tuple[float, int]:
    """(mean test entity F1 in percent, number of seeds); (nan, 0) when there is no such run."""
    rows = runs(name, fraction)
    return (100 * statistics.mean(r["test"]["f1"] for r in rows), len(rows)) if rows else (float("nan"), 0)


def diff(a: tuple[float, int], b: tuple[float, int]) -> str:
    return f"{a[0] - b[0]:+.2f}" if a[1] and b[1] else "n/a"


def fmt(a: tuple[float, int]) -> str:
    return f"{a[0]:.2f}" if a[1] else "n/a"


def per_seed_diff(name: str, baseline: str, fraction: float = 1.0) -> str:
    a = {r["seed"]: r["test"]["f1"] for r in runs(name, fraction)}
    b = {r["seed"]: r["test"]["f1"] for r in runs(baseline, fraction)}
    return ", ".join(f"seed {s}: {100 * (a[s] - b[s]):+.2f}" for s in sorted(a) if s in b)


def rl_phase_stats(name: str, fraction: float) -> dict:
    """Means over the logged windows with RL active: sample/greedy agreement, sampled and greedy reward, advantage."""
    logs = [h for r in runs(name, fraction) for h in r.get("log_history", [])
            if h.get("rl_active") == 1 and "sample_greedy_agreement" in h]
    if not logs:
        return dict(lg_agree="n/a", lg_reward="n/a", lg_greedy="n/a", lg_adv="n/a", lg_n=0)

    def mean(key):
        return statistics.mean(h[key] for h in logs)

    return dict(lg_agree=f"{100 * mean('sample_greedy_agreement'):.1f}", lg_reward=f"{mean('reward'):.3f}",
                lg_greedy=f"{mean('reward_greedy'):.3f}", lg_adv=f"{mean('advantages/mean'):+.3f}", lg_n=len(logs))


def values() -> dict:
    ce1, rl1, se1, ent1 = (mean_test_f1(n, 1.0) for n in ("ce", "ce_token_rl", "ce_sentence_rl", "ce_token_rl_entity"))
    ce5, rl5, se5, ent5 = (mean_test_f1(n, 0.05) for n in ("ce", "ce_token_rl", "ce_sentence_rl", "ce_token_rl_entity"))
    ce01, rl01 = mean_test_f1("ce", 0.01), mean_test_f1("ce_token_rl", 0.01)
    ce10, rl10 = mean_test_f1("ce", 0.1), mean_test_f1("ce_token_rl", 0.1)
    peft = {m: (mean_test_f1(f"ce_{m}", 1.0), mean_test_f1(f"ce_token_rl_{m}", 1.0)) for m in PEFT_METHODS}
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        conll2003.best_model_report(RESULTS)
    credit_names = ["ce", "ce_token_rl", "ce_sentence_rl", "ce_token_rl_entity"]
    return dict(
        T_full=table(names=credit_names, fractions=[1.0]),
        T_sweep=table(SWEEP, names=["ce", "ce_token_rl"]),
        T_credit=table(names=credit_names, fractions=[0.05, 1.0]),
        T_low=table(names=["ce", "ce_token_rl"], fractions=[0.01, 0.05, 0.1, 1.0]),
        T_peft_lr=table(SWEEP, names=[f"ce_{m}" for m in PEFT_METHODS]),
        T_peft=table(names=["ce", "ce_token_rl"] + [f"{p}_{m}" for m in PEFT_METHODS for p in ("ce", "ce_token_rl")],
                     fractions=[1.0]),
        T_peft_old=table(names=["ce_lora", "ce_token_rl_lora", "ce_bitfit", "ce_token_rl_bitfit"], fractions=[0.05]),
        REPORT=report.getvalue().strip(),
        d_full=diff(rl1, ce1), d_full_sent=diff(rl1, se1), d_sent_ce=diff(se1, ce1), d_ent_full=diff(ent1, ce1),
        n_ent_full=ent1[1], d_ent5=diff(ent5, ce5), n_ent5=ent5[1], d_ent5_rl=diff(ent5, rl5),
        d01=diff(rl01, ce01), d5=diff(rl5, ce5), d10=diff(rl10, ce10), d5_sent=diff(rl5, se5),
        rl1=fmt(rl1), ce1=fmt(ce1), se1=fmt(se1), rl5=fmt(rl5), se5=fmt(se5), ent1=fmt(ent1), ent5=fmt(ent5),
        **{f"d_{m}": diff(rl, ce) for m, (ce, rl) in peft.items()},
        **{f"ce_{m}": fmt(ce) for m, (ce, rl) in peft.items()},
        **{f"rl_{m}": fmt(rl) for m, (ce, rl) in peft.items()},
        **{f"n_{m}": rl[1] for m, (ce, rl) in peft.items()},
        lora_seeds=per_seed_diff("ce_token_rl_lora", "ce_lora"),
        gap_lora=f"{rl1[0] - peft['lora'][1][0]:.2f}",
        **rl_phase_stats("ce_token_rl_lora", 1.0),
    )


def section(filled: dict) -> str:
    return (Path(__file__).parent / "conll2003_doc_template.md").read_text().format(**filled).rstrip() + "\n"


def main() -> None:
    filled = values()
    path = ROOT / "docs" / "benchmarks.md"
    doc = path.read_text()
    start, end = doc.index("## CoNLL-2003: CE vs token-level RL"), doc.index("## Step cost:")
    path.write_text(doc[:start] + section(filled) + "\n" + doc[end:])
    print({k: v for k, v in filled.items() if not k.startswith(("T_", "REPORT"))})


if __name__ == "__main__":
    main()
