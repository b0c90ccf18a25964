"""Interactions in index space: coordinate arrays and the users x items CSR matrix."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_core.features.ids import IdVocab


@dataclass(frozen=True, eq=False)
class Interactions:
    """Ratings mapped to contiguous indices.

    ``user_idx``/``item_idx`` are ``-1`` for ids absent from the vocabularies (cold users/items
    of a test split mapped with the training vocabularies).
    """

    users: IdVocab
    items: IdVocab
    user_idx: np.ndarray
    item_idx: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray
    item_meta: pd.DataFrame | None = None

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        users: IdVocab | None = None,
        items: IdVocab | None = None,
        item_meta: pd.DataFrame | None = None,
    ) -> Interactions:
        """Map a canonical frame; vocabularies are built from it unless given."""
        users = users or IdVocab.from_values(frame["user"])
        items = items or IdVocab.from_values(frame["item"])
        return cls(
            users=users,
            items=items,
            user_idx=users.index(frame["user"]),
            item_idx=items.index(frame["item"]),
            rating=frame["rating"].to_numpy(dtype=np.float32),
            timestamp=frame["timestamp"].to_numpy(dtype=np.int64),
            item_meta=item_meta,
        )

    def __len__(self) -> int:
        return int(self.user_idx.size)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def known(self) -> np.ndarray:
        """Mask of rows whose user and item are both in the vocabularies."""
        return (self.user_idx >= 0) & (self.item_idx >= 0)

    @cached_property
    def matrix(self) -> sp.csr_matrix:
        """Users x items CSR (float32) of the ratings whose user and item are known."""
        m = self.known
        mat = sp.csr_matrix(
            (self.rating[m], (self.user_idx[m], self.item_idx[m])),
            shape=(self.n_users, self.n_items),
            dtype=np.float32,
        )
        mat.sum_duplicates()
        mat.sort_indices()
        return mat

    @property
    def global_mean(self) -> float:
        return float(self.rating.mean()) if self.rating.size else 0.0

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "user": self.users.ids[self.user_idx] if self.user_idx.size else [],
                "item": self.items.ids[self.item_idx] if self.item_idx.size else [],
                "rating": self.rating.astype("float64"),
                "timestamp": self.timestamp,
            }
        )
