"""Evaluation: rating and ranking metrics, the evaluation of a model on a split, the gate."""

from recsys_core.evaluation.evaluate import evaluate
from recsys_core.evaluation.metrics import METRICS_VERSION, lower_is_better

__all__ = ["METRICS_VERSION", "evaluate", "lower_is_better"]
