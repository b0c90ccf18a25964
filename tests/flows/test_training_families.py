"""The families that need an extra (trees: ``rerank``; neural: ``mult-vae``) through the whole
training flow: trained, judged by the ranking gate against the baselines, registered with their
role, and served from the registry by the pyfunc model, to a known user and to one it has never
seen. Whether the gate promotes them on this small set is the data's business (rerank beat
popularity by 0.09 NDCG@10 here, mult-vae with 20 epochs tied it): the test holds the
flow to judging them, and the registry to whatever the judgement was."""

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from flows.training import TrainingParams, training_flow
from recsys_core.tracking import registry

NAMES = dict(registered_model="familytest", experiment="familytest")
SMALL = dict(data={"synthetic_size": "small"}, **NAMES)
RANKING = registry.ROLE_ALIASES["ranking"]

# family: (the extra's module, small hyperparameters, the file that holds what it learned)
FAMILIES = {
    "rerank": ("lightgbm", {"candidates": 30}, "ranker.txt"),
    "mult-vae": ("torch", {"epochs": 20}, "state.npz"),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_new_family_trains_gates_registers_and_serves(workspace, family):
    extra, params, learned = FAMILIES[family]
    pytest.importorskip(extra)
    out = training_flow(TrainingParams(**SMALL, model={"name": family, "params": params}))

    # ranking only: judged against the stronger popularity baseline, never for ratings
    assert "primary_metric" not in out["roles"]["rating"]  # no rating decision made
    assert out["roles"]["rating"]["verdict"] != "promoted"
    ranking = out["roles"]["ranking"]
    assert ranking["verdict"] in {"promoted", "refused"}
    assert ranking["baseline_name"] in {"popularity", "recent-popularity"}
    assert ranking["gate_reasons"] and ranking["primary_metric"] == "warm/ndcg_at_10"
    assert 0 < out["metrics"]["ndcg_at_10"] <= 1

    client = MlflowClient()
    run = client.get_run(out["run_id"])
    assert run.data.params["model.name"] == family
    version = client.get_model_version("familytest", out["version"])
    promoted = ranking["verdict"] == "promoted"
    assert version.tags["role.ranking"] == ("champion" if promoted else "refused")
    champion = registry.get_alias("familytest", RANKING)
    assert (champion.version if champion else None) == (out["version"] if promoted else None)
    state = {a.path for a in client.list_artifacts(out["run_id"], "model_state")}
    assert {f"model_state/{f}" for f in (learned, "MANIFEST.json", "item_ids.json")} <= state

    # the registered model answers lists, for a known user and for a cold one
    model = mlflow.pyfunc.load_model(f"models:/familytest/{out['version']}")
    recs = model.predict(pd.DataFrame({"user": ["1", "nobody-yet"]}), params={"k": 5})
    assert list(recs.columns) == ["user", "rank", "item", "score"]
    assert recs.groupby("user").size().to_dict() == {"1": 5, "nobody-yet": 5}
