"""Turn a snapshot into the training inputs of one run: the split written as Parquet."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from recsys_core.features.matrix import Interactions
from recsys_core.features.splits import SplitConfig, split


@dataclass(frozen=True)
class Features:
    """References to a run's split on disk (cheap to pass between pipeline stages).

    The split is read from its Parquet files once per process: the stages that get the same
    object in memory (training, evaluation, the refit) share that read.
    """

    folder: str
    info: dict
    _read: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def train_path(self) -> Path:
        return Path(self.folder) / "train.parquet"

    @property
    def test_path(self) -> Path:
        return Path(self.folder) / "test.parquet"

    @property
    def items_path(self) -> Path:
        return Path(self.folder) / "items.parquet"

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The train and test parts (copies: a caller may change its own)."""
        train, test = self._frames()
        return train.copy(), test.copy()

    def _frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The parts as read, shared: for the readers here, which change nothing."""
        if "frames" not in self._read:
            self._read["frames"] = pd.read_parquet(self.train_path), pd.read_parquet(self.test_path)
        return self._read["frames"]

    def item_meta(self) -> pd.DataFrame | None:
        if "items" not in self._read:
            path = self.items_path
            self._read["items"] = pd.read_parquet(path) if path.exists() else None
        items = self._read["items"]
        return None if items is None else items.copy()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_read": {}}  # what travels is the reference, not the data

    def train_set(self) -> tuple[Interactions, Interactions]:
        """Train interactions (own vocabularies) and test mapped into them."""
        train, test = self.frames()
        tr = Interactions.from_frame(train, item_meta=self.item_meta())
        te = Interactions.from_frame(test, tr.users, tr.items)
        return tr, te

    def all_rows(self) -> pd.DataFrame:
        """Every row the split held (train and test), one per (user, item) pair: a pair rated
        in both parts keeps its latest rating, as the duplicates policy ``latest`` does. What
        a model is refit on once the gate has passed (``refit_full``)."""
        from recsys_core.data.duplicates import resolve_duplicates

        both = pd.concat(self._frames(), ignore_index=True)  # a new frame: no copies first
        return resolve_duplicates(both, "latest", origin="the split")[0]

    def full_set(self) -> tuple[Interactions, pd.DataFrame]:
        """:meth:`all_rows` as interactions (with their own vocabularies), and the frame."""
        rows = self.all_rows()
        return Interactions.from_frame(rows, item_meta=self.item_meta()), rows

    def to_dict(self) -> dict:
        return {"folder": self.folder, "info": self.info}


def build(
    frame: pd.DataFrame, items: pd.DataFrame | None, config: SplitConfig, folder: str | Path
) -> Features:
    """Split ``frame`` and write ``train.parquet``, ``test.parquet`` (and item metadata)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    s = split(frame, config)
    s.train.to_parquet(out / "train.parquet", index=False)
    s.test.to_parquet(out / "test.parquet", index=False)
    if items is not None:
        items.to_parquet(out / "items.parquet", index=False)
    info = {
        **s.info,
        "n_users_train": int(s.train["user"].nunique()),
        "n_items_train": int(s.train["item"].nunique()),
    }
    (out / "split.json").write_text(json.dumps(info, indent=2))
    return Features(str(out), info)
