"""Gate boundaries and reports that the scenario tests leave open (found by `make mutation`).

Values are sums of powers of two, so that a difference lands exactly on a bound.
"""

from recsys_core.evaluation.gate import GateConfig, decide

CFG = GateConfig(
    thresholds={"rmse": 1.0}, min_improvement=0.25, guarded_metrics=["mae"], guard_tolerance=0.25
)
CHAMPION = {"rmse": 1.0, "mae": 0.75, "coverage_at_10": 0.5}
BASELINE = {"rmse": 0.75, "ndcg_at_10": 0.125}


def _check(decision, name):
    (check,) = [c for c in decision.checks if c.name == name]
    return check


def test_thresholds_hold_at_their_bound():
    cfg = GateConfig(thresholds={"rmse": 0.75, "ndcg_at_10": 0.25})
    d = decide({"rmse": 0.75, "ndcg_at_10": 0.25}, config=cfg, primary="rmse")
    assert d.passed
    assert _check(d, "threshold rmse").detail == "rmse=0.7500 <= 0.75"
    assert _check(d, "threshold ndcg_at_10").detail == "ndcg_at_10=0.2500 >= 0.25"


def test_a_missing_metric_skips_only_its_own_threshold():
    # the rating threshold comes first and does not apply to a ranker: the next one still does
    cfg = GateConfig(thresholds={"rmse": 1.2, "ndcg_at_10": 0.05, "recall_at_10": 0.5})
    d = decide({"ndcg_at_10": 0.25, "recall_at_10": 0.25}, config=cfg, primary="ndcg_at_10")
    assert [c.name for c in d.checks] == ["threshold ndcg_at_10", "threshold recall_at_10"]
    assert not d.passed
    assert not _check(d, "threshold recall_at_10").passed


def test_guard_holds_at_its_tolerance_and_fails_beyond():
    at = decide({"rmse": 0.5, "mae": 1.0}, config=CFG, primary="rmse", champion=CHAMPION)
    assert _check(at, "guard mae").passed  # mae 0.75 -> 1.0: exactly the tolerance 0.25
    assert at.passed
    beyond = decide({"rmse": 0.5, "mae": 1.25}, config=CFG, primary="rmse", champion=CHAMPION)
    assert not _check(beyond, "guard mae").passed


def test_a_guarded_metric_the_champion_lacks_is_not_judged():
    cfg = CFG.model_copy(update={"guarded_metrics": ["mae", "map_at_10"]})
    d = decide(
        {"rmse": 0.5, "mae": 0.75, "map_at_10": 0.125},
        config=cfg,
        primary="rmse",
        champion=CHAMPION,
    )
    assert [c.name for c in d.checks] == ["threshold rmse", "beats champion", "guard mae"]
    assert d.passed


def test_failed_checks_are_false_not_falsy():
    no_primary = decide({"mae": 0.5}, config=CFG, primary="rmse")
    assert _check(no_primary, "primary metric").passed is False
    unscored = decide({"rmse": 0.5}, config=CFG, primary="rmse", champion={"mae": 0.5})
    assert _check(unscored, "beats champion").passed is False
    assert unscored.primary_metric == "rmse"
    assert unscored.to_dict()["primary_metric"] == "rmse"


def test_summary_lists_every_check_when_passed_and_only_failures_when_refused():
    passed = decide(
        {"rmse": 0.5, "mae": 1.0}, config=CFG, primary="rmse", champion=CHAMPION, baseline=BASELINE
    )
    assert passed.summary() == (
        "gate passed: rmse=0.5000 <= 1.0; "
        "rmse 0.5000 vs baseline 0.7500 (improvement +0.2500); "
        "rmse 0.5000 vs champion 1.0000 (improvement +0.5000, required >= 0.25); "
        "mae 1.0000 vs champion 0.7500 (change -0.2500, tolerance 0.25)"
    )
    refused = decide({"rmse": 1.25, "mae": 1.25}, config=CFG, primary="rmse", champion=CHAMPION)
    assert refused.summary() == (
        "gate refused: threshold rmse: rmse=1.2500 is not <= 1.0; "
        "beats champion: rmse 1.2500 vs champion 1.0000 (improvement -0.2500, required >= 0.25); "
        "guard mae: mae 1.2500 vs champion 0.7500 (change -0.5000, tolerance 0.25)"
    )


def test_markdown_report_in_full():
    d = decide(
        {"rmse": 0.5, "mae": 1.25},
        config=CFG,
        primary="rmse",
        champion=CHAMPION,
        baseline=BASELINE,
        champion_version="4",
    )
    # every metric of any side gets a row, sorted, '-' where a side lacks it
    assert d.to_markdown() == "\n".join(
        [
            "# Gate REFUSED",
            "",
            "Primary metric: `rmse`; champion: version 4",
            "",
            "| check | result | detail |",
            "|---|---|---|",
            "| threshold rmse | pass | rmse=0.5000 <= 1.0 |",
            "| beats baseline | pass | rmse 0.5000 vs baseline 0.7500 (improvement +0.2500) |",
            "| beats champion | pass | rmse 0.5000 vs champion 1.0000 (improvement +0.5000, "
            "required >= 0.25) |",
            "| guard mae | **fail** | mae 1.2500 vs champion 0.7500 (change -0.5000, "
            "tolerance 0.25) |",
            "",
            "| metric | challenger | champion | baseline |",
            "|---|---|---|---|",
            "| coverage_at_10 | - | 0.5000 | - |",
            "| mae | 1.2500 | 0.7500 | - |",
            "| ndcg_at_10 | - | - | 0.1250 |",
            "| rmse | 0.5000 | 1.0000 | 0.7500 |",
        ]
    )


def test_markdown_report_of_a_first_run():
    d = decide({"rmse": 0.5}, config=CFG, primary="rmse")
    assert d.to_markdown().splitlines()[:3] == [
        "# Gate PASSED",
        "",
        "Primary metric: `rmse`; no champion yet (thresholds and baseline only)",
    ]


def test_a_non_finite_primary_metric_is_named_and_refused():
    d = decide({"rmse": float("inf")}, config=GateConfig(thresholds={}), primary="rmse")
    check = _check(d, "primary metric")
    assert check.passed is False
    assert check.detail == "rmse=inf is not a finite number: the model or its evaluation is broken"
    assert not d.passed


def test_champion_unavailable_is_judged_on_the_baseline_and_reported():
    d = decide(
        {"rmse": 0.5, "mae": 0.5},
        config=CFG,
        primary="rmse",
        baseline=BASELINE,
        champion_unavailable="artifacts missing",
    )
    assert _check(d, "champion available").detail == (
        "champion unavailable: artifacts missing (version ?); judged on thresholds and baseline "
        "only (on_champion_unavailable='baseline')"
    )
    assert d.passed
    assert "\n\n**champion unavailable**: artifacts missing\n" in d.to_markdown()
    # without a baseline there is nothing left to judge the challenger against
    alone = decide(
        {"rmse": 0.5},
        config=CFG,
        primary="rmse",
        champion_version="3",
        champion_unavailable="artifacts missing",
    )
    check = _check(alone, "beats baseline")
    assert check.passed is False
    assert check.detail == (
        "no baseline given: with the champion unavailable the challenger must beat the baseline"
    )
    assert "(version 3)" in _check(alone, "champion available").detail


def test_a_baseline_without_the_primary_metric_fails():
    d = decide({"rmse": 0.5}, config=CFG, primary="rmse", baseline={"mae": 0.5})
    assert _check(d, "beats baseline").passed is False
