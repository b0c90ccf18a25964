"""Hybrid of content-based and collaborative filtering (``hybrid``).

A weighted hybrid (Burke, "Hybrid recommender systems: survey and experiments", UMUAI 12(4),
2002) whose weights follow the amount of data, as in the "switching by confidence" designs for
cold start (Schein et al., "Methods and metrics for cold-start recommendations", SIGIR 2002):

    r^_ui = w_ui * cf(u, i) + (1 - w_ui) * content(u, i),
    w_ui  = n_u / (n_u + user_shrink) * n_i / (n_i + item_shrink)

where ``n_u``/``n_i`` are the training ratings of the user/item, ``cf`` is biased MF by SGD
(``sgd-mf``) and ``content`` the TF-IDF content model (``content``). A new or rare item (or user)
leans on its metadata; a well-rated one on the collaborative factors. The two members are saved
in the subfolders ``member_0`` (cf) and ``member_1`` (content).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from recsys_core.features.matrix import Interactions
from recsys_core.models.base import Capabilities, ModelConfig
from recsys_core.models.composite import Composite
from recsys_core.models.registry import create, register
from recsys_core.models.training import Training


class HybridConfig(ModelConfig):
    """Hyperparameters of the content + collaborative hybrid."""

    cf_params: dict[str, Any] = Field(
        default_factory=lambda: {"factors": 50, "epochs": 30, "reg": 0.05},
        description="hyperparameters of the sgd-mf member",
    )
    content_params: dict[str, Any] = Field(
        default_factory=dict, description="hyperparameters of the content member"
    )
    user_shrink: float = Field(5.0, ge=0, description="ratings at which a user is half CF")
    item_shrink: float = Field(10.0, ge=0, description="ratings at which an item is half CF")


@register("hybrid")
class Hybrid(Composite[HybridConfig]):
    """Content and collaborative (sgd-mf) scores blended by each user's and item's data."""

    capabilities = Capabilities(needs_item_metadata=True)
    user_weight_: np.ndarray
    """n_u / (n_u + user_shrink) per user: the share of the CF member"""
    item_weight_: np.ndarray
    """n_i / (n_i + item_shrink) per item; r = w cf + (1 - w) content with w = user_weight_[u] *
    item_weight_[i] (members in member_0, member_1)"""
    user_axes: ClassVar[dict[str, int]] = {"user_weight_": 0}

    def __init__(self, config: HybridConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        # fail at construction, not at fit, on bad member hyperparameters
        create("sgd-mf", self.config.cf_params)
        create("content", self.config.content_params)

    def _n_members(self) -> int:
        return 2

    def _fit(self, data: Interactions, training: Training) -> None:
        cfg = self.config
        cf = create("sgd-mf", cfg.cf_params).fit(data, eval_data=training.eval_data)
        content = create("content", cfg.content_params).fit(data)
        self.members_ = [cf, content]
        m = data.known
        n_u = np.bincount(data.user_idx[m], minlength=data.n_users).astype(np.float64)
        n_i = np.bincount(data.item_idx[m], minlength=data.n_items).astype(np.float64)
        self.user_weight_ = n_u / (n_u + cfg.user_shrink) if cfg.user_shrink else np.ones_like(n_u)
        self.item_weight_ = n_i / (n_i + cfg.item_shrink) if cfg.item_shrink else np.ones_like(n_i)

    def _weights(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        wu = np.where(u >= 0, self.user_weight_[np.maximum(u, 0)], 0.0)
        wi = np.where(i >= 0, self.item_weight_[np.maximum(i, 0)], 0.0)
        return wu * wi

    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        cf, content = self.members_
        w = self._weights(u, i)
        return w * cf.predict_idx(u, i) + (1.0 - w) * content.predict_idx(u, i)

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        cf, content = self.members_
        w = self.user_weight_[u][:, None] * self.item_weight_[None, :]
        return w * cf._score_users(u) + (1.0 - w) * content._score_users(u)
