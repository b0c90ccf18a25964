"""Explanations in words: the sentence a person reads for one recommended item.

The :class:`~recsys_core.serving.scorer.Scorer` finds *why* an item is in a list (the user's
items that contributed most, and by how much); this module says it in words. Items are named by
their title when the training data carried item metadata (MovieLens' movies, the synthetic
generator's items, a source's ``items`` table), by id otherwise. The numbers (weights,
similarities, interaction counts) stay in the reasons' fields, out of the sentence:

    Because you watched Star Wars (1977) and Fargo (1996)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def join_names(names: Sequence[str]) -> str:
    """``A``, ``A and B``, ``A, B and C``."""
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def because(reasons: Sequence[Any] | None) -> str | None:
    """The sentence of one item's reasons (:class:`~recsys_core.serving.scorer.Reason`).

    Items named by title (metadata of the MovieLens shape: movies) are "watched"; without
    titles the sentence says "interacted with" and names ids. A reason that names no item (the
    popularity of a cold user's list, a ranker's features) are joined into one sentence.
    """
    if not reasons:
        return None
    named = [r for r in reasons if r.item_id is not None]
    if not named:  # reasons of features (rerank's), or the popularity of a cold user's list
        text = join_names([r.text for r in reasons])
        return text[:1].upper() + text[1:]
    names = [r.title or f"item {r.item_id}" for r in named]
    verb = "watched" if any(r.title for r in named) else "interacted with"
    return f"Because you {verb} {join_names(names)}"
