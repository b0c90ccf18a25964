"""load_champion on a real store: none, loaded from model_state/, unavailable with a reason."""

import numpy as np

from recsys_core.tracking import registry
from recsys_core.tracking.champion import load_champion


def test_no_champion(store):
    state = load_champion("nothing-here")
    assert (state.version, state.model, state.unavailable) == (None, None, None)


def test_champion_is_loaded_from_its_state(new_version, tiny_model_dir):
    from recsys_core.models import Recommender

    v1 = new_version()
    registry.promote(v1, {}, expected=None)
    state = load_champion("regtest")
    assert state.version == "1" and state.unavailable is None
    expected = Recommender.load(tiny_model_dir)
    users, items = expected.user_vocab_.ids[:5], expected.item_vocab_.ids[:5]
    np.testing.assert_array_equal(state.model.predict(users, items),
                                  expected.predict(users, items))


def test_champion_with_deleted_artifacts_is_unavailable(new_version, delete_run_artifacts):
    v1 = new_version()
    registry.promote(v1, {}, expected=None)
    delete_run_artifacts(v1.run_id)
    state = load_champion("regtest")
    assert state.version == "1" and state.model is None
    assert state.unavailable.startswith("its model state cannot be loaded:")
    assert "version 1" in state.unavailable  # model_store names the version and the run


def test_role_alias(new_version):
    v1 = new_version()
    registry.promote(v1, {}, expected=None, alias="champion-ranking")
    assert load_champion("regtest").version is None
    assert load_champion("regtest", alias="champion-ranking").version == "1"
