"""A saved model readable without recsys: ``MANIFEST.json``/``MANIFEST.md`` and Parquet factors.

``Recommender.save`` writes, next to the arrays it loads back (``state.npz``, one ``<name>.npz``
per sparse matrix, the id vocabularies and ``model.json``):

* ``MANIFEST.json``: every array with its file, shape, dtype and meaning, the scalars, the id
  files, the Parquet tables and how to load them with numpy, scipy and pandas;
* ``MANIFEST.md``: the same for a person reading the artifact in MLflow or S3;
* ``user_factors.parquet`` / ``item_factors.parquet`` for the models that have per-user and
  per-item vectors or biases: one row per user (item) keyed by its ORIGINAL id (``user_id`` /
  ``item_id``, strings), then ``bias`` where the model has biases, then the factors as plain
  float columns ``f0 .. f{k-1}``. Plain columns rather than one list column: they load as a float
  matrix in pandas (``frame.filter(regex=r"^f\\d+$").to_numpy()``), as numeric columns in Spark
  (``VectorAssembler``) and SQL engines, and go straight into a vector index.

Loading a model (``Recommender.load``) reads only ``state.npz`` (``allow_pickle=False``) and the
JSON files; the manifest and the tables are for readers outside recsys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from recsys_core.models.base import Recommender

MANIFEST_JSON = "MANIFEST.json"
MANIFEST_MD = "MANIFEST.md"
FORMAT = "recsys-model-state/1"

_HOW_TO_LOAD = {
    "numpy": 'np.load("state.npz", allow_pickle=False)["<name>"]',
    "scipy": 'scipy.sparse.load_npz("<name>.npz")  # the arrays whose file is <name>.npz',
    "ids": 'json.load(open("user_ids.json"))[n]  # the raw id of row n of a user array',
    "pandas": 'pd.read_parquet("user_factors.parquet").set_index("user_id")',
    "factor_matrix": 'frame.filter(regex=r"^f\\d+$").to_numpy()',
}


def factor_tables(model: Recommender) -> dict[str, pd.DataFrame]:
    """``{"user_factors.parquet": frame, "item_factors.parquet": frame}`` of a fitted model.

    The arrays come from ``model.factor_attributes`` (``user_factors``, ``user_bias``, ...); a side
    with neither factors nor biases has no table.
    """
    out: dict[str, pd.DataFrame] = {}
    for side, vocab in (("user", model.user_vocab_), ("item", model.item_vocab_)):
        factors = _array(model, f"{side}_factors", ndim=2)
        bias = _array(model, f"{side}_bias", ndim=1)
        if factors is None and bias is None:
            continue
        columns: dict[str, Any] = {f"{side}_id": pd.array(vocab.to_list(), dtype="string")}
        if bias is not None:
            columns["bias"] = bias
        if factors is not None:
            columns.update({f"f{j}": factors[:, j] for j in range(factors.shape[1])})
        out[f"{side}_factors.parquet"] = pd.DataFrame(columns)
    return out


def _array(model: Recommender, role: str, ndim: int) -> np.ndarray | None:
    attr = model.factor_attributes.get(role)
    value = getattr(model, attr, None) if attr else None
    if isinstance(value, np.ndarray) and value.ndim == ndim:
        return value
    return None


def write(
    model: Recommender,
    folder: Path,
    arrays: dict[str, np.ndarray],
    scalars: dict[str, Any],
    sparse: dict[str, Any],
    state_file: str,
) -> dict[str, Any]:
    """Write the Parquet tables, ``MANIFEST.json`` and ``MANIFEST.md`` into ``folder``."""
    docs = type(model).state_docs()
    entries = [
        _entry(name, state_file, value, docs, key=name) for name, value in sorted(arrays.items())
    ]
    entries += [
        _entry(name, f"{name}.npz", value, docs, kind="scipy.sparse CSR")
        for name, value in sorted(sparse.items())
    ]
    tables = []
    for file, frame in factor_tables(model).items():
        frame.to_parquet(folder / file, index=False)
        side = file.split("_", 1)[0]
        n_factors = sum(1 for c in frame.columns if c.startswith("f") and c[1:].isdigit())
        tables.append(
            {
                "file": file,
                "rows": int(len(frame)),
                "key": f"{side}_id",
                "columns": [str(c) for c in frame.columns],
                "factors": n_factors,
                "description": f"one row per {side}, keyed by its original id"
                + (", its bias" if "bias" in frame.columns else "")
                + (f", its {n_factors} factors f0..f{n_factors - 1}" if n_factors else ""),
            }
        )
    manifest = {
        "format": FORMAT,
        "model": model.name,
        "summary": (type(model).__doc__ or "").strip().splitlines()[0],
        "config": model.get_params(),
        "ids": {
            "user_ids.json": f"JSON list of the {model.n_users} raw user ids; row n of every "
            "per-user array is the user ids[n]",
            "item_ids.json": f"JSON list of the {model.n_items} raw item ids; row n of every "
            "per-item array is the item ids[n]",
        },
        "arrays": entries,
        "scalars": {
            name: {"value": value, "description": docs.get(name, "")}
            for name, value in sorted(scalars.items())
        },
        "tables": tables,
        "members": [f"member_{n}" for n in range(len(getattr(model, "members_", [])))],
        "how_to_load": _HOW_TO_LOAD,
    }
    if model.private_release is not None:
        manifest["privacy"] = privacy_section(model, entries, scalars, tables)
    (folder / MANIFEST_JSON).write_text(json.dumps(manifest, indent=2, default=json_default))
    (folder / MANIFEST_MD).write_text(_markdown(manifest))
    return manifest


def privacy_section(
    model: Recommender,
    entries: list[dict[str, Any]],
    scalars: dict[str, Any],
    tables: list[dict[str, Any]],
) -> dict[str, Any]:
    """What the model's differential-privacy guarantee covers, and every stored array, scalar,
    id file and table it does not, with the reason (``Recommender.private_release``)."""
    covered = model.private_release or frozenset()
    per_user = model.per_user_arrays()
    record = getattr(model, "privacy_", {})
    outside: list[dict[str, str]] = []
    for name in [e["name"] for e in entries] + sorted(scalars):
        if name in covered:
            continue
        why = (
            "per-user: each user's own data, kept to score that user; not released under "
            "the guarantee, handle as personal data"
            if name in per_user
            else "computed from the exact training data without noise"
        )
        outside.append({"name": name, "why": why})
    outside.append({"name": "user_ids.json", "why": "per-user: the raw ids of the users"})
    outside.append(
        {"name": "item_ids.json", "why": "the exact set of items rated in the training data"}
    )
    outside += [
        {"name": t["file"], "why": "per-user: one row per user, from the arrays above"}
        for t in tables
        if t["key"] == "user_id"
    ]
    outside.append(
        {
            "name": "model.json history",
            "why": "training losses computed from the exact data without noise",
        }
    )
    return {
        "guarantee": "user-level (epsilon, delta) differential privacy of the arrays listed in "
        "covered, for one fit; a run that registers several fits (the evaluated model and its "
        "refit) composes them: the run's total is its MLflow metric epsilon",
        "epsilon": record.get("epsilon"),
        "delta": record.get("delta"),
        "accountant": record.get("accountant"),
        "covered": sorted(covered & ({e["name"] for e in entries} | set(scalars))),
        "outside": outside,
    }


def _entry(
    name: str,
    file: str,
    value: Any,
    docs: dict[str, str],
    *,
    key: str | None = None,
    kind: str = "numpy array",
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "file": file}
    if key is not None:
        entry["key"] = key
    entry.update(
        {
            "kind": kind,
            "shape": [int(n) for n in value.shape],
            "dtype": str(value.dtype),
            "description": docs.get(name, ""),
        }
    )
    return entry


def json_default(obj: Any) -> Any:
    """numpy scalars and arrays as plain JSON values (``json.dumps(..., default=...)``)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot serialize {type(obj).__name__}")


def _markdown(m: dict[str, Any]) -> str:
    lines = [
        f"# Model state: {m['model']}",
        "",
        f"{m['summary'].rstrip('.')}. Saved by recsys ({m['format']}); readable with numpy, "
        "scipy and pandas alone. `MANIFEST.json` holds the same facts for programs.",
        "",
        "## Ids",
        "",
    ]
    lines += [f"- `{file}`: {text}" for file, text in m["ids"].items()]
    lines += ["", "## Arrays", "", "| name | file | shape | dtype | meaning |", "|" + "---|" * 5]
    lines += [
        f"| `{e['name']}` | `{e['file']}` | {' x '.join(map(str, e['shape']))} | {e['dtype']} | "
        f"{e['description'].replace('|', chr(92) + '|')} |"
        for e in m["arrays"]
    ]
    if m["scalars"]:
        lines += ["", "## Scalars", ""]
        lines += [
            f"- `{name}` = {json.dumps(s['value'], default=json_default)}: {s['description']}"
            for name, s in m["scalars"].items()
        ]
    if m["tables"]:
        lines += ["", "## Factor tables (Parquet)", ""]
        lines += [f"- `{t['file']}`: {t['rows']} rows; {t['description']}" for t in m["tables"]]
    if "privacy" in m:
        p = m["privacy"]
        lines += [
            "",
            "## Privacy",
            "",
            f"Guarantee: {p['guarantee']}. This fit: epsilon = {p['epsilon']}, delta = "
            f"{p['delta']} ({p['accountant']} accountant).",
            "",
            "Covered: " + ", ".join(f"`{name}`" for name in p["covered"]) + ".",
            "",
            "**Outside the guarantee** (do not publish as private):",
            "",
        ]
        lines += [f"- `{o['name']}`: {o['why']}" for o in p["outside"]]
    if m["members"]:
        lines += ["", "## Members", "", "Each a saved model of its own, with its own manifest:", ""]
        lines += [f"- `{folder}/`" for folder in m["members"]]
    lines += [
        "",
        "## How to load",
        "",
        "```python",
        "import json",
        "import numpy as np",
        "import pandas as pd",
        "import scipy.sparse",
        "",
        'state = np.load("state.npz", allow_pickle=False)  # state["<name>"] for each array',
        'user_ids = json.load(open("user_ids.json"))  # row n of a user array: user_ids[n]',
    ]
    if any(e["kind"] != "numpy array" for e in m["arrays"]):
        lines.append('seen = scipy.sparse.load_npz("seen_.npz")  # any <name>.npz array')
    if m["tables"]:
        file = m["tables"][0]["file"]
        key = m["tables"][0]["key"]
        lines += [
            f'frame = pd.read_parquet("{file}").set_index("{key}")',
            'vectors = frame.filter(regex=r"^f\\d+$").to_numpy()  # one row per id',
        ]
    lines += ["```", ""]
    return "\n".join(lines)
