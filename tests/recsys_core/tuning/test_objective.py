"""The objective: metric and direction, the study storage, resuming, the best parameters."""

import optuna
import pytest

from recsys_core.exceptions import ConfigError, TrainingError
from recsys_core.tuning import best_params, objective_metric, open_study, storage_url


def test_objective_metric():
    assert objective_metric(True, 10) == ("rmse", "minimize")
    assert objective_metric(False, 5) == ("ndcg_at_5", "maximize")
    assert objective_metric(True, 10, "mae") == ("mae", "minimize")


def test_storage_url_default_env_and_explicit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECSYS_TUNE_STORAGE", raising=False)
    assert storage_url() == f"sqlite:///{tmp_path / '.recsys' / 'optuna.db'}"
    monkeypatch.setenv("RECSYS_TUNE_STORAGE", "postgresql://db/optuna")
    assert storage_url() == "postgresql://db/optuna"
    assert storage_url("sqlite:///x.db") == "sqlite:///x.db"


def test_study_resumes_and_refuses_other_direction(store_url):
    """On SQLite and on PostgreSQL (``postgresql://``: the psycopg2 driver is chosen)."""
    url = store_url
    study = open_study("s", url, "minimize")
    for value in (3.0, 1.0, 2.0):
        trial = study.ask({"reg": optuna.distributions.FloatDistribution(0.01, 1.0)})
        study.tell(trial, value)
    again = open_study("s", url, "minimize")
    assert len(again.trials) == 3
    best = best_params(again, "als", "rmse")
    assert (best.trial, best.value, best.n_complete) == (1, 1.0, 3)
    assert best.model_spec() == {"name": "als", "params": {"reg": study.trials[1].params["reg"]}}
    assert best.cli_args() == f"--model als --param reg={study.trials[1].params['reg']}"
    with pytest.raises(ConfigError, match="exists and minimizes; this objective maximizes"):
        open_study("s", url, "maximize")


def test_no_complete_trial_and_bad_storage(tmp_path):
    study = open_study("empty", f"sqlite:///{tmp_path / 'e.db'}", "minimize")
    with pytest.raises(TrainingError, match="has no complete trial: every trial failed or none"):
        best_params(study, "als", "rmse")
    # the reasons of this run's failed trials are in the message
    with pytest.raises(
        TrainingError,
        match=r"all 2 trial\(s\) of this run failed \(trial 0: "
        r"TrainingError: diverged; trial 1: .*narrow the search space",
    ):
        best_params(study, "als", "rmse", {1: "ConfigError: bad", 0: "TrainingError: diverged"})
    with pytest.raises(ConfigError, match="RECSYS_TUNE_STORAGE"):
        open_study("x", "nosuchdb://nowhere/x", "minimize")
    with pytest.raises(ConfigError, match="cannot open") as err:
        open_study("x", "postgresql://svc:hunter22@127.0.0.1:1/optuna", "minimize")
    assert "hunter22" not in str(err.value)


def test_study_plots_leave_the_global_plot_style_alone(tmp_path):
    # optuna's matplotlib plots switch the global style; the training flow's plots in the same
    # process (a worker) must keep theirs
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna

    from recsys_core.tuning.objective import study_plots

    before = list(plt.rcParams["axes.prop_cycle"])
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_float("y", 0, 1), n_trials=4)
    assert len(study_plots(study, tmp_path)) == 2
    assert list(plt.rcParams["axes.prop_cycle"]) == before


@pytest.mark.parametrize("strategy", ["time", "replay"])
def test_a_trial_is_scored_by_its_split_strategys_protocol(strategy, tmp_path):
    from recsys_core.data.synthetic import config_for, generate
    from recsys_core.features.prepare import build
    from recsys_core.features.splits import SplitConfig
    from recsys_core.models.spec import ModelSpec
    from recsys_core.tuning.objective import score_trial, validation_features

    frame = generate(config_for("tiny")).interactions
    feats = build(frame, None, SplitConfig(strategy=strategy), tmp_path / "features")
    inner = validation_features(feats, SplitConfig(strategy=strategy), tmp_path / "validation")
    metrics = score_trial(ModelSpec(name="popularity"), inner, k=5)
    _, test = inner.frames()
    # the replay answers once per validation interaction, by revealed interactions
    assert ("revealed_0/ndcg_at_5" in metrics) == (strategy == "replay")
    assert metrics.get("n", len(test)) == len(test) and "ndcg_at_5" in metrics
