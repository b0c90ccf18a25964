import json

import numpy as np
import pandas as pd

from recsys_core.models import create
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
    docs = SVDpp.state_docs()
    assert "seen_" in docs  # from Recommender
    assert docs["user_vectors_"].startswith("p_u + ")
    # a docstring over several lines is one line of the manifest
    assert "\n" not in docs["user_vectors_"] and "  " not in docs["user_vectors_"]
    assert "config" not in docs and "capabilities" not in docs  # not fitted state


def test_a_subclass_redocuments_an_inherited_attribute():
    from recsys_core.models.biased_factors import BiasedFactors
    from recsys_core.models.dp_als import DPALS

    assert DPALS.state_docs()["user_factors_"] != BiasedFactors.state_docs()["user_factors_"]
    assert "not part of the private release" in DPALS.state_docs()["user_factors_"]


def test_a_state_docs_dict_is_refused_with_the_way_to_document():
    import pytest

    from recsys_core.models.base import Recommender

    with pytest.raises(TypeError, match="docstring under its annotation"):

        class Old(Recommender):  # noqa: F841
            state_docs = {"mu_": "global mean"}  # type: ignore[assignment]
