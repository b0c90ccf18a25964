"""Features: id vocabularies, sparse interaction matrices, leak-free splits, content features."""

from recsys_core.features.ids import IdVocab
from recsys_core.features.matrix import Interactions
from recsys_core.features.splits import SplitConfig, split

__all__ = ["IdVocab", "Interactions", "SplitConfig", "split"]
