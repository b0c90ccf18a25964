"""The users x items matrix of implicit-feedback models, in the form ``implicit`` expects.

CSR, float32, sorted indices (``implicit`` issues #167, #576, #608): one entry per observed pair,
``1`` or the rating (``use_ratings``). Shared by ``ease``, ``implicit-als``, ``implicit-bpr`` and
``item-knn-implicit``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_core.features.matrix import Interactions


def user_items(data: Interactions, use_ratings: bool = False) -> sp.csr_matrix:
    """Users x items CSR float32 with sorted indices: ratings, or ``1`` per observed pair."""
    X = data.matrix.copy()
    if not use_ratings:
        X.data = np.ones_like(X.data)
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sort_indices()
    return X
