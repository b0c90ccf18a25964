"""load_champion on a real store: none, loaded from evaluated_state/ or else model_state/,
unavailable with a reason; a version behind two role aliases loaded once."""

import numpy as np

from recsys_core.tracking import registry
from recsys_core.tracking.champion import load_champion, load_champions

RATING = registry.ROLE_ALIASES[registry.RATING]


def test_no_champion(store):
    state = load_champion("nothing-here", RATING)
    assert (state.version, state.model, state.unavailable) == (None, None, None)


def test_champion_is_loaded_from_its_state(new_version, tiny_model_dir):
    from recsys_core.models import Recommender

    v1 = new_version()
    registry.promote(v1, {}, expected=None, alias=RATING)
    state = load_champion("regtest", RATING)
    assert state.version == "1" and state.unavailable is None
    assert state.state_path == "model_state"  # no evaluated_state/: the served state
    expected = Recommender.load(tiny_model_dir)
    users, items = expected.user_vocab_.ids[:5], expected.item_vocab_.ids[:5]
    np.testing.assert_array_equal(state.model.predict(users, items), expected.predict(users, items))


def test_champion_with_deleted_artifacts_is_unavailable(new_version, delete_run_artifacts):
    v1 = new_version()
    registry.promote(v1, {}, expected=None, alias=RATING)
    delete_run_artifacts(v1.run_id)
    state = load_champion("regtest", RATING)
    assert state.version == "1" and state.model is None
    assert state.unavailable.startswith("its model state cannot be loaded:")
    assert "version 1" in state.unavailable  # model_store names the version and the run


def test_role_alias(new_version):
    v1 = new_version()
    registry.promote(v1, {}, expected=None, alias="champion-ranking")
    assert load_champion("regtest", RATING).version is None
    assert load_champion("regtest", alias="champion-ranking").version == "1"


def test_a_refit_champion_is_rescored_as_it_was_judged(
    new_version, tiny_model_dir, tmp_path, monkeypatch
):
    """A version with ``evaluated_state/`` (the judged model; ``model_state/`` is the refit) is
    loaded from it; both roles of one version share one load."""
    from recsys_core.data.synthetic import config_for, generate
    from recsys_core.features import Interactions
    from recsys_core.models import Recommender, create
    from recsys_core.tracking import mlflow_run, model_store

    data = Interactions.from_frame(generate(config_for("tiny", seed=3)).interactions)
    judged = create("global-mean").fit(data).save(tmp_path / "judged")
    v1 = new_version()
    mlflow_run.log_artifacts(v1.run_id, judged, model_store.EVALUATED_PATH)
    for alias in registry.ROLE_ALIASES.values():
        registry.promote(v1, {}, expected=None, alias=alias)
    loads = []
    real = model_store.load_recommender
    monkeypatch.setattr(
        model_store,
        "load_recommender",
        lambda *a, **kw: loads.append(kw.get("path")) or real(*a, **kw),
    )
    states = load_champions("regtest", list(registry.ROLE_ALIASES.values()))
    assert loads == ["evaluated_state"]  # once for the two roles
    ranking, rating = states["champion-ranking"], states[RATING]
    assert ranking is rating and rating.state_path == "evaluated_state"
    assert rating.model.name == "global-mean"  # the judged model, not the served bias model
    assert Recommender.load(tiny_model_dir).name == "bias"
