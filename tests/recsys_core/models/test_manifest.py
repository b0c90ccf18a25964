import json

import numpy as np
import pandas as pd

from recsys_core.models import create
from recsys_core.models.manifest import state_docs
from recsys_core.models.svdpp import SVDpp


def test_a_bias_model_exports_its_biases_without_factor_columns(tiny, tmp_path):
    model = create("bias").fit(tiny.data)
    folder = model.save(tmp_path / "bias")
    users = pd.read_parquet(folder / "user_factors.parquet")
    assert list(users.columns) == ["user_id", "bias"]
    np.testing.assert_array_equal(users["bias"].to_numpy(), model.user_bias_)
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert manifest["scalars"]["mu_"]["value"] == float(model.mu_)
    assert [t["factors"] for t in manifest["tables"]] == [0, 0]


def test_markdown_lists_every_array_and_how_to_load(tiny, tmp_path):
    model = create("svdpp", {"epochs": 2, "factors": 3}).fit(tiny.data)
    folder = model.save(tmp_path / "svdpp")
    text = (folder / "MANIFEST.md").read_text()
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    for entry in manifest["arrays"]:
        assert f"| `{entry['name']}` | `{entry['file']}` |" in text
    assert r"\|N(u)\|" in text  # a pipe in a description does not break the table
    assert 'np.load("state.npz", allow_pickle=False)' in text
    assert 'pd.read_parquet("user_factors.parquet").set_index("user_id")' in text


def test_docs_merge_along_the_class_hierarchy():
    docs = state_docs(SVDpp)
    assert "seen_" in docs  # from Recommender
    assert docs["user_vectors_"].startswith("p_u + ")
