"""The promotion gate: thresholds, baseline, champion with min_improvement, guarded metrics;
the gate of each serving role (ranking against popularity, rating against bias)."""

import pytest
from pydantic import ValidationError

from recsys_core.evaluation.gate import (
    GateConfig,
    RankingGate,
    RatingGate,
    RoleGates,
    at_k,
    baseline_candidates,
    baseline_of,
    competing_roles,
    decide,
    resolve_primary,
    resolved,
    strongest_baseline,
)
from recsys_core.exceptions import ConfigError

RATING = GateConfig(
    thresholds={"rmse": 1.0}, min_improvement=0.01, guarded_metrics=["mae"], guard_tolerance=0.02
)


def _check(decision, name):
    matches = [c for c in decision.checks if c.name == name]
    assert len(matches) == 1, [c.name for c in decision.checks]
    return matches[0]


def test_first_run_passes_on_thresholds_and_baseline():
    d = decide(
        {"rmse": 0.90, "mae": 0.70},
        config=RATING,
        primary="rmse",
        baseline={"rmse": 0.95, "mae": 0.75},
    )
    assert d.passed
    assert [c.name for c in d.checks] == ["threshold rmse", "beats baseline"]
    assert d.champion is None
    assert "improvement +0.0500" in _check(d, "beats baseline").detail
    assert d.summary().startswith("gate passed")


def test_threshold_failure():
    d = decide({"rmse": 1.05}, config=RATING, primary="rmse", baseline={"rmse": 1.10})
    assert not d.passed
    check = _check(d, "threshold rmse")
    assert not check.passed
    assert check.detail == "rmse=1.0500 is not <= 1.0"
    assert _check(d, "beats baseline").passed
    assert "threshold rmse" in d.summary() and d.summary().startswith("gate refused")


def test_ranking_threshold_is_a_lower_bound():
    cfg = GateConfig(thresholds={"ndcg_at_10": 0.05, "rmse": 1.2})
    low = decide({"ndcg_at_10": 0.04}, config=cfg, primary="ndcg_at_10")
    assert not low.passed
    assert _check(low, "threshold ndcg_at_10").detail == "ndcg_at_10=0.0400 is not >= 0.05"
    # a ranking-only model has no rmse: that threshold does not apply
    assert [c.name for c in low.checks] == ["threshold ndcg_at_10"]
    assert decide({"ndcg_at_10": 0.06}, config=cfg, primary="ndcg_at_10").passed


def test_worse_than_baseline_is_refused():
    d = decide({"rmse": 0.96}, config=RATING, primary="rmse", baseline={"rmse": 0.95})
    assert not d.passed
    check = _check(d, "beats baseline")
    assert not check.passed
    assert "improvement -0.0100" in check.detail


def test_equal_to_baseline_is_refused():
    d = decide({"rmse": 0.95}, config=RATING, primary="rmse", baseline={"rmse": 0.95})
    assert not _check(d, "beats baseline").passed


def test_baseline_check_can_be_turned_off():
    cfg = RATING.model_copy(update={"require_beat_baseline": False})
    d = decide({"rmse": 0.99}, config=cfg, primary="rmse", baseline={"rmse": 0.95})
    assert d.passed
    assert [c.name for c in d.checks] == ["threshold rmse"]


def test_champion_must_be_beaten_by_min_improvement():
    champion = {"rmse": 0.90, "mae": 0.70}
    better = decide(
        {"rmse": 0.885, "mae": 0.70},
        config=RATING,
        primary="rmse",
        champion=champion,
        champion_version="3",
    )
    assert better.passed
    assert "required >= 0.01" in _check(better, "beats champion").detail
    assert better.champion_version == "3"

    barely = decide({"rmse": 0.895, "mae": 0.70}, config=RATING, primary="rmse", champion=champion)
    assert not barely.passed
    assert not _check(barely, "beats champion").passed


def test_equal_metrics_are_refused_when_an_improvement_is_required():
    champion = {"rmse": 0.90, "mae": 0.70}
    d = decide(dict(champion), config=RATING, primary="rmse", champion=champion)
    assert not d.passed
    assert "improvement +0.0000" in _check(d, "beats champion").detail
    # with no improvement required, a tie is enough
    lenient = RATING.model_copy(update={"min_improvement": 0.0})
    assert decide(dict(champion), config=lenient, primary="rmse", champion=champion).passed


def test_guarded_metric_regression_beyond_tolerance_is_refused():
    champion = {"rmse": 0.90, "mae": 0.70}
    within = decide({"rmse": 0.85, "mae": 0.715}, config=RATING, primary="rmse", champion=champion)
    assert within.passed
    assert _check(within, "guard mae").passed
    beyond = decide({"rmse": 0.85, "mae": 0.73}, config=RATING, primary="rmse", champion=champion)
    assert not beyond.passed
    guard = _check(beyond, "guard mae")
    assert not guard.passed
    assert "change -0.0300, tolerance 0.02" in guard.detail
    assert _check(beyond, "beats champion").passed


def test_ranking_primary_metric_higher_is_better():
    cfg = GateConfig(thresholds={}, min_improvement=0.005, guarded_metrics=["recall_at_10"])
    champion = {"ndcg_at_10": 0.20, "recall_at_10": 0.10}
    up = decide(
        {"ndcg_at_10": 0.21, "recall_at_10": 0.10},
        config=cfg,
        primary="ndcg_at_10",
        champion=champion,
        baseline={"ndcg_at_10": 0.15},
    )
    assert up.passed
    down = decide(
        {"ndcg_at_10": 0.19, "recall_at_10": 0.10},
        config=cfg,
        primary="ndcg_at_10",
        champion=champion,
    )
    assert not down.passed
    assert "improvement -0.0100" in _check(down, "beats champion").detail
    lower_recall = decide(
        {"ndcg_at_10": 0.25, "recall_at_10": 0.08},
        config=cfg,
        primary="ndcg_at_10",
        champion=champion,
    )
    assert not _check(lower_recall, "guard recall_at_10").passed


def test_champion_without_the_primary_metric_fails():
    d = decide(
        {"ndcg_at_10": 0.2},
        config=GateConfig(thresholds={}),
        primary="ndcg_at_10",
        champion={"rmse": 0.9},
    )
    assert not d.passed
    assert "could not be scored on 'ndcg_at_10'" in _check(d, "beats champion").detail


def test_missing_primary_metric_fails_with_a_message():
    d = decide(
        {"ndcg_at_10": 0.2, "recall_at_10": 0.1},
        config=RATING,
        primary="rmse",
        baseline={"rmse": 0.9},
        champion={"rmse": 0.9},
    )
    assert not d.passed
    check = _check(d, "primary metric")
    assert "no 'rmse'" in check.detail
    assert "ndcg_at_10, recall_at_10" in check.detail
    assert "primary_metric" in check.detail


def test_nan_metric_never_passes():
    d = decide({"rmse": float("nan")}, config=RATING, primary="rmse", baseline={"rmse": 1.5})
    assert not d.passed


def test_resolve_primary():
    assert resolve_primary(GateConfig(), predicts_ratings=True, k=10) == "rmse"
    assert resolve_primary(GateConfig(), predicts_ratings=False, k=20) == "ndcg_at_20"
    cfg = GateConfig(primary_metric="map_at_10")
    assert resolve_primary(cfg, predicts_ratings=True, k=10) == "map_at_10"


def test_config_is_validated():
    with pytest.raises(ValidationError):
        GateConfig(min_improvement=-0.1)
    with pytest.raises(ValidationError):
        GateConfig(threshold={"rmse": 1.0})


def test_to_markdown_lists_every_check_and_metric():
    d = decide(
        {"rmse": 0.85, "mae": 0.73, "ndcg_at_10": 0.1},
        config=RATING,
        primary="rmse",
        champion={"rmse": 0.90, "mae": 0.70},
        baseline={"rmse": 0.95},
        champion_version="7",
    )
    md = d.to_markdown()
    assert md.startswith("# Gate REFUSED")
    assert "champion: version 7" in md
    for check in d.checks:
        assert f"| {check.name} | {'pass' if check.passed else '**fail**'} | {check.detail} |" in md
    assert len(d.checks) == 4
    assert "| rmse | 0.8500 | 0.9000 | 0.9500 |" in md
    assert "| ndcg_at_10 | 0.1000 | - | - |" in md
    assert d.reasons[0].startswith(("PASS", "FAIL"))
    assert d.to_dict()["passed"] is False


def test_to_markdown_without_champion():
    d = decide({"rmse": 0.9}, config=RATING, primary="rmse")
    md = d.to_markdown()
    assert md.startswith("# Gate PASSED")
    assert "no champion yet" in md


# --- boundaries: NaN, ties, exactly at the tolerance, unavailable champion, reasons order ---


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_primary_is_refused_without_baseline_or_threshold(value):
    cfg = GateConfig(thresholds={})
    d = decide({"ndcg_at_10": value}, config=cfg, primary="ndcg_at_10")
    assert not d.passed
    assert "not a finite number" in _check(d, "primary metric").detail


def test_nan_primary_is_refused_against_a_champion():
    d = decide(
        {"rmse": float("nan"), "mae": 0.7},
        config=RATING,
        primary="rmse",
        champion={"rmse": 0.9, "mae": 0.7},
        baseline={"rmse": 0.95},
    )
    assert not d.passed
    assert not _check(d, "beats champion").passed
    assert not _check(d, "beats baseline").passed


def test_guard_exactly_at_its_tolerance_passes_and_just_beyond_fails():
    champion = {"rmse": 0.90, "mae": 0.70}
    # 0.72 - 0.70 is 0.0199999... in binary: the tolerance is inclusive, as written
    at = decide({"rmse": 0.85, "mae": 0.72}, config=RATING, primary="rmse", champion=champion)
    assert _check(at, "guard mae").passed and at.passed
    beyond = decide({"rmse": 0.85, "mae": 0.7201}, config=RATING, primary="rmse", champion=champion)
    assert not _check(beyond, "guard mae").passed and not beyond.passed


def test_improvement_exactly_at_min_improvement_passes_and_just_below_fails():
    champion = {"rmse": 0.90}
    at = decide({"rmse": 0.89}, config=RATING, primary="rmse", champion=champion)
    assert _check(at, "beats champion").passed
    below = decide({"rmse": 0.8901}, config=RATING, primary="rmse", champion=champion)
    assert not _check(below, "beats champion").passed


def test_the_baseline_is_used_when_given():
    worse = decide({"rmse": 0.99}, config=RATING, primary="rmse", baseline={"rmse": 0.98})
    assert not worse.passed and not _check(worse, "beats baseline").passed
    no_primary = decide({"rmse": 0.9}, config=RATING, primary="rmse", baseline={"mae": 0.7})
    assert not no_primary.passed
    assert "baseline has no 'rmse'" in _check(no_primary, "beats baseline").detail


def test_reasons_list_failures_first():
    d = decide(
        {"rmse": 0.85, "mae": 0.80},
        config=RATING,
        primary="rmse",
        champion={"rmse": 0.90, "mae": 0.70},
        baseline={"rmse": 0.95},
    )
    assert [c.passed for c in d.checks] == [True, True, True, False]
    assert d.reasons[0].startswith("FAIL guard mae")
    assert [r.split(" ")[0] for r in d.reasons] == ["FAIL", "PASS", "PASS", "PASS"]


def test_unavailable_champion_defaults_to_thresholds_and_baseline():
    d = decide(
        {"rmse": 0.85, "mae": 0.7},
        config=RATING,
        primary="rmse",
        baseline={"rmse": 0.95},
        champion_version="4",
        champion_unavailable="its model state cannot be loaded: gone",
    )
    assert d.passed
    check = _check(d, "champion available")
    assert check.passed
    assert check.detail.startswith(
        "champion unavailable: its model state cannot be loaded: gone (version 4)"
    )
    assert "on_champion_unavailable='baseline'" in check.detail
    assert not [c for c in d.checks if c.name == "beats champion"]
    assert d.champion_unavailable and "champion unavailable" in d.to_markdown()
    # the baseline must still be beaten, and must be there to be beaten
    worse = decide(
        {"rmse": 0.96},
        config=RATING,
        primary="rmse",
        baseline={"rmse": 0.95},
        champion_version="4",
        champion_unavailable="gone",
    )
    assert not worse.passed
    missing = decide(
        {"rmse": 0.85},
        config=RATING,
        primary="rmse",
        champion_version="4",
        champion_unavailable="gone",
    )
    assert not missing.passed
    assert "no baseline given" in _check(missing, "beats baseline").detail


def test_unavailable_champion_can_refuse():
    cfg = RATING.model_copy(update={"on_champion_unavailable": "refuse"})
    d = decide(
        {"rmse": 0.5},
        config=cfg,
        primary="rmse",
        baseline={"rmse": 0.95},
        champion_version="4",
        champion_unavailable="gone",
    )
    assert not d.passed
    assert d.reasons[0] == (
        "FAIL champion available: champion unavailable: gone (version 4); "
        "refused (on_champion_unavailable='refuse')"
    )
    with pytest.raises(ValidationError):
        GateConfig(on_champion_unavailable="ignore")


def test_a_champion_scoring_nan_is_unavailable_not_unbeatable():
    d = decide(
        {"rmse": 0.85, "mae": 0.7},
        config=RATING,
        primary="rmse",
        champion={"rmse": float("nan"), "mae": 0.7},
        champion_version="2",
        baseline={"rmse": 0.95},
    )
    assert d.passed
    assert "rmse re-scored on this split is nan" in _check(d, "champion available").detail


PRIVATE = GateConfig(thresholds={"rmse": 1.2, "epsilon": 2.0}, require_beat_baseline=False)


@pytest.mark.parametrize(("eps", "passed"), [(1.5, True), (2.0, True), (2.5, False)])
def test_epsilon_threshold_is_an_upper_bound(eps, passed):
    # a private model's record (DPALS.privacy_metrics) merged into the challenger's metrics
    d = decide({"rmse": 0.95, "epsilon": eps, "delta": 1e-6}, config=PRIVATE, primary="rmse")
    assert d.passed is passed
    check = _check(d, "threshold epsilon")
    assert check.passed is passed
    assert ("<= 2.0" in check.detail) and (passed or "is not <= 2.0" in check.detail)


def test_epsilon_threshold_refuses_a_model_without_a_privacy_record():
    d = decide({"rmse": 0.90}, config=PRIVATE, primary="rmse")
    assert not d.passed
    assert "not a differentially private model" in _check(d, "threshold epsilon").detail


def test_an_infinite_epsilon_fails_the_budget():
    # dp-als trained without noise reports epsilon = inf
    d = decide({"rmse": 0.90, "epsilon": float("inf")}, config=PRIVATE, primary="rmse")
    assert not d.passed and not _check(d, "threshold epsilon").passed


# --- the ranking gate: NDCG@k beats popularity, recall@k not lost to it (inclusive) ---------

# judged on all users: these tests pass figures without populations
RANKING = resolved(RankingGate(population="all"), 10)
POPULARITY = {"ndcg_at_10": 0.22, "recall_at_10": 0.10}


def _ranking(challenger, champion=None, config=RANKING):
    return decide(
        challenger,
        config=config,
        primary=config.primary_metric,
        baseline=POPULARITY,
        champion=champion,
        champion_version="3" if champion else None,
        role="ranking",
        baseline_name="popularity",
    )


def test_ranking_gate_defaults_resolve_k():
    assert RANKING.primary_metric == "ndcg_at_10"
    assert RANKING.baseline_guards == ["recall_at_10"]
    assert RANKING.guarded_metrics == ["recall_at_10"] and RANKING.thresholds == {}
    assert baseline_of(RANKING, predicts_ratings=True) == "popularity"
    # a time or replay split: all-time popularity may be stale after the cutoff; both are
    # scored and the stronger is the bar
    both = ["popularity", "recent-popularity"]
    assert baseline_candidates(RankingGate(), False, "time") == both
    assert baseline_candidates(RankingGate(), True, "replay") == both
    assert baseline_candidates(RankingGate(), False, "random") == ["popularity"]
    assert baseline_candidates(RankingGate(baseline="popularity"), False, "time") == ["popularity"]
    assert baseline_candidates(RatingGate(), True, "time") == ["bias"]
    scores = {"popularity": {"ndcg_at_10": 0.30}, "recent-popularity": {"ndcg_at_10": 0.31}}
    assert strongest_baseline(both, scores, "ndcg_at_10") == "recent-popularity"
    scores["popularity"]["ndcg_at_10"] = 0.31  # a tie: the first
    assert strongest_baseline(both, scores, "ndcg_at_10") == "popularity"
    assert (
        strongest_baseline(
            ["bias", "global-mean"], {"bias": {"rmse": 0.9}, "global-mean": {"rmse": 1.1}}, "rmse"
        )
        == "bias"
    )
    assert strongest_baseline(both, {}, "ndcg_at_10") == "popularity"  # none scored
    assert baseline_of(RatingGate(), predicts_ratings=False) == "bias"
    assert at_k("precision_at_k", 5) == "precision_at_5" and at_k("rmse", 5) == "rmse"
    assert RANKING.cold_guards == ["ndcg_at_10"]


def test_role_gates_judge_warm_users_by_default():
    ranking, rating = resolved(RankingGate(), 20), resolved(RatingGate(), 20)
    assert ranking.primary_metric == "warm/ndcg_at_20"
    assert ranking.baseline_guards == ranking.guarded_metrics == ["warm/recall_at_20"]
    assert ranking.cold_guards == ["ndcg_at_20"]
    assert (rating.primary_metric, rating.guarded_metrics) == ("warm/rmse", ["warm/mae"])
    assert rating.cold_guards == ["rmse"] and rating.thresholds == {"rmse": 1.2}
    # a name that says its population is kept
    assert resolved(RatingGate(primary_metric="all/rmse"), 10).primary_metric == "rmse"
    assert resolved(GateConfig(), 10).primary_metric == "auto"


def test_ranking_gate_refuses_a_rating_model_below_popularity():
    # the MovieLens-100K figures: sgd-mf 0.09 against popularity 0.22
    d = _ranking({"rmse": 0.93, "ndcg_at_10": 0.09, "recall_at_10": 0.04})
    assert not d.passed
    assert d.reasons[0].startswith("FAIL beats baseline: ndcg_at_10 0.0900 vs baseline 0.2200")
    assert "FAIL baseline guard recall_at_10" in " | ".join(d.reasons)
    assert "# Gate REFUSED: ranking role" in d.to_markdown()
    assert "baseline: popularity" in d.to_markdown()


def test_ranking_gate_refuses_better_ndcg_with_a_lost_recall():
    d = _ranking({"ndcg_at_10": 0.30, "recall_at_10": 0.0999})
    assert not d.passed
    assert [r for r in d.reasons if r.startswith("FAIL")] == [
        "FAIL baseline guard recall_at_10: recall_at_10 0.0999 vs baseline 0.1000 (change "
        "-0.0001; may not be worse than the baseline)"
    ]


def test_ranking_gate_passes_a_model_beating_both():
    d = _ranking({"ndcg_at_10": 0.44, "recall_at_10": 0.25})
    assert d.passed, d.reasons
    assert {r.split(":")[0] for r in d.reasons} == {
        "PASS beats baseline",
        "PASS baseline guard recall_at_10",
    }


def test_ranking_gate_boundaries():
    # recall tied with popularity passes (inclusive); NDCG tied is refused (strict)
    assert _ranking({"ndcg_at_10": 0.2201, "recall_at_10": 0.10}).passed
    assert not _ranking({"ndcg_at_10": 0.22, "recall_at_10": 0.30}).passed
    # a loss within the float slack passes, one just beyond it does not
    assert _ranking({"ndcg_at_10": 0.3, "recall_at_10": 0.10 - 1e-10}).passed
    assert not _ranking({"ndcg_at_10": 0.3, "recall_at_10": 0.10 - 1e-8}).passed
    # a guarded metric that the challenger lacks (another k) fails, it is not skipped
    lacking = _ranking({"ndcg_at_10": 0.3})
    assert not lacking.passed
    assert "the challenger has no 'recall_at_10'" in " ".join(lacking.reasons)
    # no baseline guards configured: only the primary metric against the baseline
    loose = resolved(RankingGate(baseline_guards=[], population="all"), 10)
    assert _ranking({"ndcg_at_10": 0.3, "recall_at_10": 0.0}, config=loose).passed


def test_ranking_gate_against_its_champion():
    champion = {"ndcg_at_10": 0.40, "recall_at_10": 0.20}
    # better NDCG by exactly min_improvement, recall regressed by exactly the tolerance: passes
    edge = _ranking({"ndcg_at_10": 0.401, "recall_at_10": 0.19}, champion)
    assert edge.passed, edge.reasons
    worse = _ranking({"ndcg_at_10": 0.45, "recall_at_10": 0.18}, champion)
    assert not worse.passed and "FAIL guard recall_at_10" in worse.reasons[0]


def test_competing_roles():
    both, ranking = ("ranking", "rating"), ("ranking",)
    assert competing_roles("auto", fillable=both, model="sgd-mf") == ["ranking", "rating"]
    assert competing_roles("auto", fillable=ranking, model="ease") == ["ranking"]
    assert competing_roles(["rating"], fillable=both, model="sgd-mf") == ["rating"]
    assert competing_roles(["rating", "ranking"], fillable=both, model="als") == [
        "ranking",
        "rating",
    ]
    with pytest.raises(
        ConfigError, match="model 'ease' does not predict ratings.*roles=\\['ranking'\\]"
    ):
        competing_roles(["rating"], fillable=ranking, model="ease")
    with pytest.raises(ConfigError, match="give 'auto' or a list of ranking, rating"):
        competing_roles(["served"], fillable=both, model="als")
    with pytest.raises(ConfigError, match="give 'auto'"):
        competing_roles([], fillable=both, model="als")


def test_role_gates_set_one_field_keep_the_role_defaults():
    gates = RoleGates.model_validate({"ranking": {"min_improvement": 0.02}})
    assert gates.ranking.min_improvement == 0.02 and gates.ranking.baseline == "auto"
    assert gates.ranking.baseline_guards == ["recall_at_k"]
    assert gates.rating.thresholds == {"rmse": 1.2} and gates.rating.min_improvement == 0.001
    assert gates.for_role("rating").primary_metric == "rmse"


# --- populations: judged on warm users, the cold users a guard ------------------------------

RATING_ROLE = resolved(RatingGate(), 10)
SIZES = {
    "warm/users": 107,
    "warm/rows": 2260,
    "cold/users": 194,
    "cold/rows": 13740,
    "all/users": 301,
    "all/rows": 16000,
}
# the bias model's figures on a time split where most test rows are cold users' rows
BIAS = {
    **SIZES,
    "rmse": 1.0308,
    "mae": 0.82,
    "warm/rmse": 1.0009,
    "warm/mae": 0.80,
    "cold/rmse": 1.0357,
    "cold/mae": 0.83,
}


def _rating(challenger, champion=None, config=RATING_ROLE):
    return decide(
        challenger,
        config=config,
        primary=config.primary_metric,
        baseline=BIAS,
        champion=champion,
        champion_version="2" if champion else None,
        role="rating",
        baseline_name="bias",
    )


def test_better_on_warm_users_and_equal_on_cold_ones_is_promoted():
    # worse than bias over all rows (1.0310 > 1.0308) only through rounding of the fallback
    challenger = {
        **BIAS,
        "rmse": 1.0310,
        "warm/rmse": 0.9636,
        "warm/mae": 0.77,
        "cold/rmse": 1.0357,
    }
    d = _rating(challenger)
    assert d.passed, d.reasons
    assert d.primary_metric == "warm/rmse"
    assert "warm/rmse 0.9636 vs baseline 1.0009" in _check(d, "beats baseline").detail
    guard = _check(d, "cold guard cold/rmse vs baseline")
    assert guard.passed and "change +0.0000" in guard.detail


def test_a_model_that_breaks_the_fallback_is_refused():
    challenger = {
        **BIAS,
        "rmse": 1.0424,
        "warm/rmse": 0.9636,
        "warm/mae": 0.77,
        "cold/rmse": 1.0557,
    }
    d = _rating(challenger)
    assert not d.passed
    assert _check(d, "beats baseline").passed
    assert d.reasons[0] == (
        "FAIL cold guard cold/rmse vs baseline: cold/rmse 1.0557 vs baseline 1.0357 (change "
        "-0.0200, tolerance 0.005: the fallback may not get worse)"
    )
    # within the tolerance it passes; without cold guards the warm gain alone decides
    assert _rating({**challenger, "cold/rmse": 1.0407}).passed
    assert _rating(challenger, config=RATING_ROLE.model_copy(update={"cold_guards": []})).passed


def test_champion_and_challenger_are_compared_on_the_same_population():
    champion = {**BIAS, "rmse": 1.02, "warm/rmse": 0.99, "warm/mae": 0.79, "cold/rmse": 1.0357}
    # better over all rows than the champion, worse on its warm users: refused
    worse_warm = {**BIAS, "rmse": 1.01, "warm/rmse": 0.995, "warm/mae": 0.79, "cold/rmse": 1.0357}
    d = _rating(worse_warm, champion)
    assert not _check(d, "beats champion").passed
    assert "warm/rmse 0.9950 vs champion 0.9900" in _check(d, "beats champion").detail
    assert _check(d, "guard warm/mae").passed
    better = {**worse_warm, "warm/rmse": 0.97}
    assert _rating(better, champion).passed
    # a champion with a better fallback: the challenger's cold users may not lose to it
    sharper = {**champion, "cold/rmse": 1.02}
    d = _rating(better, sharper)
    assert not _check(d, "cold guard cold/rmse vs champion").passed
    assert _check(d, "cold guard cold/rmse vs baseline").passed


def test_no_warm_user_falls_back_to_all_users_and_says_so():
    cold_only = {
        "warm/users": 0,
        "warm/rows": 0,
        "cold/users": 5,
        "cold/rows": 9,
        "rmse": 1.00,
        "mae": 0.8,
        "cold/rmse": 1.00,
        "cold/mae": 0.8,
    }
    base = {**cold_only, "rmse": 1.01, "cold/rmse": 1.01}
    d = decide(cold_only, config=RATING_ROLE, primary="warm/rmse", baseline=base)
    assert d.passed, d.reasons
    check = _check(d, "population")
    assert check.passed and check.detail == (
        "no warm user in the test set (warm/users = 0): judged on all users instead, rmse for "
        "warm/rmse (on_empty_population='all')"
    )
    assert "rmse 1.0000 vs baseline 1.0100" in _check(d, "beats baseline").detail
    champion = {**cold_only, "mae": 0.7}
    guarded = decide(
        cold_only,
        config=RATING_ROLE.model_copy(update={"min_improvement": 0}),
        primary="warm/rmse",
        baseline=base,
        champion=champion,
    )
    assert not _check(guarded, "guard mae").passed  # the guards fall back with the primary
    strict = RATING_ROLE.model_copy(update={"on_empty_population": "refuse"})
    refused = decide(cold_only, config=strict, primary="warm/rmse", baseline=base)
    assert not refused.passed
    assert "refused (on_empty_population='refuse')" in _check(refused, "population").detail


def test_no_relevant_item_for_warm_users_is_an_empty_population_too():
    metrics = {
        "warm/users": 3,
        "cold/users": 2,
        "ndcg_at_10": 0.3,
        "recall_at_10": 0.2,
        "cold/ndcg_at_10": 0.3,
    }
    config = resolved(RankingGate(), 10)
    d = decide(
        metrics,
        config=config,
        primary=config.primary_metric,
        baseline={**metrics, "ndcg_at_10": 0.2},
    )
    assert "no warm/ndcg_at_10 for the 3 warm users" in _check(d, "population").detail
    assert d.passed, d.reasons


def test_no_cold_user_passes_the_cold_guard_and_says_so():
    warm_only = {**BIAS, "cold/users": 0, "cold/rows": 0, "warm/rmse": 0.97}
    del warm_only["cold/rmse"], warm_only["cold/mae"]
    d = _rating(warm_only, config=RATING_ROLE)
    assert _check(d, "cold guard").detail == (
        "no cold user in the test set (cold/users = 0): nothing to guard"
    )
    assert d.passed


def test_cold_guard_needs_the_metric_on_both_sides():
    challenger = {**BIAS, "warm/rmse": 0.97}
    del challenger["cold/rmse"]
    d = _rating(challenger)
    assert (
        "the challenger has no 'cold/rmse'" in _check(d, "cold guard cold/rmse vs baseline").detail
    )
    assert not d.passed


def test_decision_tables_carry_the_populations():
    challenger = {
        **BIAS,
        "warm/rmse": 0.9636,
        "cold_items/items": 3,
        "cold_items/rows": 40,
        "cold_items/share": 0.0025,
        "cold_items/rmse": 1.1,
    }
    md = _rating(challenger).to_markdown()
    assert (
        "Populations (test users with / without training rows): warm 107 users (2,260 "
        "rows); cold 194 users (13,740 rows); all 301 users (16,000 rows); cold items 3 "
        "(0.2% of the rows)"
    ) in md
    rows = [
        line.split(" | ")[0][2:]
        for line in md.splitlines()
        if line.startswith("| ") and line.count("|") == 5
    ][1:]
    assert rows == [
        "mae",
        "warm/mae",
        "cold/mae",
        "rmse",
        "warm/rmse",
        "cold/rmse",
        "cold_items/rmse",
    ]
    assert "| warm/rmse | 0.9636 | - | 1.0009 |" in md


def test_real_figures_a_warm_gain_passes_and_a_worse_fallback_is_refused():
    """End to end on a time split: als beats bias on warm users and answers cold users as
    bias does, so it passes; the same model answering unknown users with the mean is
    refused by the cold guard, though its warm figures are the same."""
    import numpy as np

    from recsys_core.data import synthetic
    from recsys_core.evaluation import evaluate
    from recsys_core.features import Interactions, SplitConfig, split
    from recsys_core.models import create

    s = split(
        synthetic.generate(synthetic.config_for("small", seed=8)).interactions,
        SplitConfig(strategy="time"),
    )
    data = Interactions.from_frame(s.train)
    bias = evaluate(create("bias").fit(data), s.train, s.test).metrics
    model = create("als").fit(data)
    als = evaluate(model, s.train, s.test).metrics
    assert als["cold/users"] > 0 and als["warm/users"] > 0
    assert als["cold/rmse"] == pytest.approx(bias["cold/rmse"], abs=1e-12)
    d = _rating_real(als, bias)
    assert d.passed, d.reasons
    assert als["warm/rmse"] < bias["warm/rmse"] - 0.01
    model.fallback_item_bias_ = np.zeros_like(model.fallback_item_bias_)
    broken = evaluate(model, s.train, s.test).metrics
    assert broken["warm/rmse"] == pytest.approx(als["warm/rmse"])
    refused = _rating_real(broken, bias)
    assert not refused.passed
    assert [r.split(":")[0] for r in refused.reasons if r.startswith("FAIL")] == [
        "FAIL cold guard cold/rmse vs baseline"
    ]


def _rating_real(challenger, baseline):
    return decide(
        challenger, config=RATING_ROLE, primary=RATING_ROLE.primary_metric, baseline=baseline
    )
