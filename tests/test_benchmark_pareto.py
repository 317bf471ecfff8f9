"""benchmarks/pareto.py without training: the Pareto front, and the plot and table written from a results JSON
between the doc's markers (the hand-written reading around them is kept)."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import pareto  # noqa: E402


def test_pareto_front_keeps_the_points_nothing_dominates():
    assert pareto.pareto_front([(0.9, 0.7), (0.8, 0.8), (0.7, 0.7), (0.9, 0.7)]) == [True, True, False, True]


def test_report_only_writes_the_plot_and_the_table_between_the_markers(tmp_path):
    runs = [{"label": "warm start (CE)", "kind": "warm start (CE)", "precision": 0.85, "recall": 0.85, "f1": 0.85},
            {"label": "w=0", "kind": "weighted", "precision": 0.80, "recall": 0.80, "f1": 0.80},
            {"label": "recall s.t. P>=0.9", "kind": "constrained", "precision": 0.90, "recall": 0.70, "f1": 0.79}]
    for run, on_front in zip(runs, pareto.pareto_front([(r["precision"], r["recall"]) for r in runs])):
        run["pareto"] = on_front
    record = {"command": "python benchmarks/pareto.py", "minutes": 1.0, "runs": runs,
              "config": {"train_sentences": 10, "dev_sentences": 5, "rl_steps": 2}}
    results = tmp_path / "results.json"
    results.write_text(json.dumps(record))
    doc = tmp_path / "pareto.md"
    doc.write_text(f"# title\n\n{pareto.TABLE_BEGIN}\nold\n{pareto.TABLE_END}\n\n## Reading\n\nkept\n")
    pareto.main(["--report_only", "--results_path", str(results), "--doc_prefix", str(tmp_path / "pareto")])
    text = doc.read_text()
    assert "old" not in text and text.endswith("## Reading\n\nkept\n") and (tmp_path / "pareto.png").stat().st_size > 0
    assert "| w=0 | 80.0 | 80.0 | 80.0 |  |" in text  # dominated by the warm start; percent, as every doc
    assert "| recall s.t. P>=0.9 | 90.0 | 70.0 | 79.0 | yes |" in text
