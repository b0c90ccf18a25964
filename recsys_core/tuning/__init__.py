"""Hyperparameter studies: search spaces per model (as data) and the objective of a trial.

Optuna drives the study (``optuna.Study``, ask-and-tell); this package only says what to search
(:mod:`~recsys_core.tuning.spaces`) and how a trial is scored
(:mod:`~recsys_core.tuning.objective`). The orchestration (trials in parallel, MLflow runs) lives
in ``flows/tune.py``.
"""

from recsys_core.tuning.objective import (
    DEFAULTS_ATTR,
    BestParams,
    best_params,
    default_params,
    objective_metric,
    open_study,
    score_trial,
    storage_url,
    study_plots,
    validation_features,
)
from recsys_core.tuning.spaces import SPACES, ParamRange, SearchSpace, space_for

__all__ = [
    "DEFAULTS_ATTR",
    "SPACES",
    "BestParams",
    "ParamRange",
    "SearchSpace",
    "best_params",
    "default_params",
    "objective_metric",
    "open_study",
    "score_trial",
    "space_for",
    "storage_url",
    "study_plots",
    "validation_features",
]
