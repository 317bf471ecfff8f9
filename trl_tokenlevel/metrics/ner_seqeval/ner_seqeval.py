"""Offline `evaluate` metric: entity-level NER scores (seqeval, strict IOB2) from `trl_tokenlevel`.

Load it by path, which needs no Hub access (unlike `evaluate.load("seqeval")`):

>>> from trl_tokenlevel.metrics import load_ner_metric
>>> metric = load_ner_metric()
>>> metric.compute(predictions=[["B-PER", "I-PER", "O"]], references=[["B-PER", "I-PER", "O"]])["f1"]
1.0
"""

import datasets
import evaluate

from trl_tokenlevel.metrics.ner import entity_scores


_DESCRIPTION = """Entity-level precision, recall and F1 (micro over entities) for IOB2 tags, computed with seqeval in
strict mode, plus per-type scores and token-level accuracy (O included)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[str]]`): Predicted IOB2 tags, one list per sentence.
    references (`list[list[str]]`): Gold IOB2 tags, same shape as `predictions`.
Returns:
    `precision`, `recall`, `f1`, `<TYPE>_precision`, `<TYPE>_recall`, `<TYPE>_f1`, `<TYPE>_support`, `token_accuracy`.
"""

_CITATION = """@misc{seqeval,
  title={{seqeval}: A Python framework for sequence labeling evaluation},
  url={https://github.com/chakki-works/seqeval},
  author={Hiroki Nakayama},
  year={2018},
}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class NerSeqeval(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
            reference_urls=["https://github.com/chakki-works/seqeval"],
        )

    def _compute(self, predictions, references):
        return entity_scores(references, predictions)
