"""The objective of a study: what a trial is scored on, and where the study is kept.

Trials are scored on a validation split carved out of the training part (the same split
strategy applied again), never on the test part: the test part stays for the training flow's
gate, which judges the tuned parameters like any other challenger. The study persists in an
Optuna RDB storage (sqlite under ``.recsys`` by default, PostgreSQL through a URL), so a study
interrupted half-way resumes where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from recsys_core.evaluation import evaluate
from recsys_core.evaluation.metrics import lower_is_better
from recsys_core.evaluation.replay import replay
from recsys_core.events.engine import with_psycopg2
from recsys_core.exceptions import ConfigError, TrainingError
from recsys_core.extras import require
from recsys_core.features import Interactions
from recsys_core.features.prepare import Features, build
from recsys_core.features.splits import SplitConfig
from recsys_core.models.spec import ModelSpec
from recsys_core.redaction import redact
from recsys_core.settings import get_settings
from recsys_core.tuning.spaces import SearchSpace

log = logging.getLogger(__name__)

STORAGE_ENV = "RECSYS_TUNE_STORAGE"
EMBEDDED_STORAGE = ".recsys/optuna.db"
DEFAULTS_ATTR = "recsys.defaults"
"""User attribute of the trial that ran the model's own hyperparameters."""


def storage_url(url: str | None = None) -> str:
    """``url``, else ``$RECSYS_TUNE_STORAGE``, else sqlite in ``.recsys`` of the working dir."""
    chosen = url or (get_settings().tuning.storage or "").strip()
    if chosen:
        return chosen
    path = Path(EMBEDDED_STORAGE).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def objective_metric(
    predicts_ratings: bool, k: int, metric: str = "auto"
) -> tuple[str, Literal["minimize", "maximize"]]:
    """The metric a study optimizes and its direction (auto: rmse, or ndcg_at_k for rankers)."""
    name = metric if metric != "auto" else ("rmse" if predicts_ratings else f"ndcg_at_{k}")
    return name, "minimize" if lower_is_better(name) else "maximize"


def open_study(name: str, storage: str, direction: Literal["minimize", "maximize"], seed: int = 42):
    """Create study ``name`` in ``storage``, or load it to add trials (``load_if_exists``).

    The TPE sampler lies about running trials (``constant_liar``) so that trials asked for
    together, to run in parallel, do not all sample the same region; its seed is ``seed`` plus
    the number of trials already in the study.
    """
    optuna = require("optuna", "tune")

    try:
        url = with_psycopg2(storage).render_as_string(hide_password=False)
        study = optuna.create_study(
            study_name=name, storage=url, direction=direction, load_if_exists=True
        )
    except Exception as exc:  # bad URL, unreachable database, missing driver
        raise ConfigError(
            f"cannot open the study storage {redact(storage)!r} "
            f"({type(exc).__name__}: {redact(str(exc))}); set "
            f"{STORAGE_ENV} (or --storage) to an SQLAlchemy URL such as "
            "postgresql://user@host:5432/optuna"
        ) from exc
    if study.direction.name.lower() != direction:
        raise ConfigError(
            f"study {name!r} exists and {study.direction.name.lower()}s; this "
            f"objective {direction}s: choose another study name"
        )
    # seeded by the trials already there: a resumed study does not sample its first trials again
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials), constant_liar=True)
    return study


def default_params(spec: ModelSpec, space: SearchSpace) -> dict[str, Any]:
    """``spec``'s hyperparameters that the space searches and whose value lies inside it."""
    values = spec.config.model_dump()
    return {name: values[name] for name, rng in space.items() if rng.contains(values[name])}


def validation_features(feats: Features, split: SplitConfig, folder: str | Path) -> Features:
    """The training part of ``feats`` split again (fit / validation) into ``folder``."""
    train, _ = feats.frames()
    return build(train, feats.item_meta(), split, folder)


def score_trial(
    spec: ModelSpec, feats: Features, *, k: int, relevance_threshold: float | None = None
) -> dict[str, float]:
    """Fit ``spec`` on the training part of ``feats`` and return its metrics on the other."""
    train, test = feats.frames()
    model = spec.create().fit(Interactions.from_frame(train, item_meta=feats.item_meta()))
    if feats.info.get("strategy") == "replay":  # the validation period replayed with fold-in
        return dict(replay(model, test, k=k).metrics)
    result = evaluate(model, train, test, k=k, relevance_threshold=relevance_threshold)
    return dict(result.metrics)


@dataclass(frozen=True)
class BestParams:
    """The best trial of a study, in the shape the training flow's ``model`` accepts."""

    name: str
    params: dict[str, Any]
    metric: str
    value: float
    trial: int
    n_complete: int
    default_value: float | None = None
    """The value of the trial that ran the model's defaults (None: not in the study)."""

    def model_spec(self) -> dict[str, Any]:
        """``{"name": ..., "params": {...}}``: ``TrainingParams.model`` as JSON."""
        return {"name": self.name, "params": self.params}

    def cli_args(self) -> str:
        """The same parameters as ``recsys train`` options."""
        return " ".join(
            [f"--model {self.name}", *(f"--param {k}={v}" for k, v in self.params.items())]
        )


def best_params(
    study, model: str, metric: str, failures: Mapping[int, str] | None = None
) -> BestParams:
    """The best complete trial of ``study`` as a validated :class:`BestParams`.

    ``failures`` (trial number -> reason) are the trials that failed in this run: they word the
    error raised when no trial of the study completed.
    """
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        reasons = "; ".join(f"trial {n}: {why}" for n, why in sorted((failures or {}).items())[:3])
        raise TrainingError(
            f"study {study.study_name!r} has no complete trial: "
            + (
                f"all {len(failures)} trial(s) of this run failed ({reasons[:1500]}); "
                if failures
                else "every trial failed or none ran; "
            )
            + f"fix the fixed hyperparameters of {model!r} or narrow the search space "
            "(each failed trial's MLflow run holds its error in the recsys.error tag)"
        )
    best = study.best_trial
    spec = ModelSpec(name=model, params=best.params)  # valid for the training flow
    default = next((float(t.value) for t in complete if t.user_attrs.get(DEFAULTS_ATTR)), None)
    return BestParams(
        name=model,
        params=dict(spec.params),
        metric=metric,
        value=float(best.value),
        trial=best.number,
        n_complete=len(complete),
        default_value=default,
    )


def study_plots(study, folder: str | Path) -> list[str]:
    """Optimization history and parameter importances as PNG files (those that can be drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as vis

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in (
        ("optimization_history", vis.plot_optimization_history),
        ("param_importances", vis.plot_param_importances),
    ):
        # optuna's plots switch matplotlib's global style (plt.style.use): keep it to this block,
        # or every later plot of the process (the training flow's) changes colours
        with matplotlib.rc_context():
            try:
                ax = draw(study)
            except Exception as exc:
                log.warning("no %s plot: %s", name, exc)
                continue
            path = out / f"{name}.png"
            figure = ax.get_figure(root=True)
            assert figure is not None  # an axes drawn by optuna always has one
            figure.savefig(path, dpi=100, bbox_inches="tight")
            plt.close(figure)
        written.append(str(path))
    return written
