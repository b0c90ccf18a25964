"""Models made of member models (``blend``, ``hybrid``): saved and loaded with their members.

A composite keeps its fitted members in ``members_``; ``save`` writes each into a subfolder
``member_<n>`` of the composite's folder (a saved model of its own, loadable alone), and ``load``
reads them back after the composite's own state.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from recsys_core.features.ids import IdVocab
from recsys_core.models.base import C, Recommender


class Composite(Recommender[C]):
    """A model made of member models, saved in subfolders ``member_<n>`` of its folder."""

    members_: list[Recommender]

    def _state(self) -> dict[str, Any]:
        return {k: v for k, v in super()._state().items() if k != "members_"}

    def save(self, path: str | Path) -> Path:
        folder = super().save(path)
        for n, member in enumerate(self.members_):
            member.save(folder / f"member_{n}")
        return folder

    def _drop_users(self, keep: np.ndarray) -> None:
        # the members share the composite's user vocabulary, hence its user indices
        super()._drop_users(keep)
        for member in self.members_:
            member._drop_users(keep)
            member.user_vocab_ = IdVocab(member.user_vocab_.ids[keep])

    def _after_load(self, folder: Path) -> None:
        self.members_ = [Recommender.load(folder / f"member_{n}") for n in range(self._n_members())]

    @abstractmethod
    def _n_members(self) -> int:
        """How many members the fitted composite holds."""
