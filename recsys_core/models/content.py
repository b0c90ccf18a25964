"""Content-based filtering from item metadata (``content``).

Lops, de Gemmis & Semeraro, "Content-based recommender systems: state of the art and trends",
Recommender Systems Handbook, 2011; Pazzani & Billsus, "Content-based recommendation systems",
The Adaptive Web, 2007.

* Item profiles: TF-IDF (scikit-learn) over tokens of the metadata: one token per genre
  (``genre=sci-fi``), the title's words and the decade of the year in the title
  (``decade=1990``); rows L2-normalized.
* User profiles: the mean of the profiles of the items the user rated, each weighted by the
  user's mean-centred rating ``r_ui - rbar_u`` (liked items pull towards their features, disliked
  items push away).
* Score ``s_ui = profile_u . x_i``. Rating prediction adds it to the regularized baseline
  estimates, ``r^_ui = mu + b_u + b_i + gamma s_ui``, with ``gamma`` the least-squares fit of the
  training residuals on the leave-one-out scores (the item's own rating removed from the user's
  profile, so ``gamma`` is not inflated by memorization). Ranking uses the same predicted rating.

Cold start: the fitted vocabulary and IDF weights are kept (``vocabulary_``, ``idf_``) along with
the user profiles (``user_profiles_``), so an item never seen in training but with metadata is
scored by ``score_new_items(users, items_frame)``: its TF-IDF vector is built with the training
vocabulary and multiplied by the user profiles. Items without metadata have an empty profile
and fall back to the baseline.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from recsys_core.features.matrix import Interactions
from recsys_core.models import hyperparameters as hp
from recsys_core.models.base import Capabilities, ModelConfig
from recsys_core.models.baselines import BaselineEstimates
from recsys_core.models.registry import register
from recsys_core.models.training import Training

log = logging.getLogger(__name__)

_WORD = re.compile(r"[a-z][a-z']+")
_YEAR = re.compile(r"\((\d{4})\)")


class ContentConfig(ModelConfig):
    """Hyperparameters of the TF-IDF content model."""

    use_title: bool = Field(True, description="use the words of the title as features")
    use_genres: bool = Field(True, description="use the genres as features")
    min_df: int = Field(2, ge=1, description="ignore tokens found in fewer items")
    reg: float = Field(10.0, ge=0, description="shrinkage of the content weight gamma")
    reg_items: float = hp.baseline_reg(10.0, of="item")
    reg_users: float = hp.baseline_reg(15.0, of="user")


def metadata_tokens(text: str) -> list[str]:
    """Tokens of a ``genres<TAB>title`` document (the analyzer of the TF-IDF)."""
    genres, _, title = text.partition("\t")
    out = [f"genre={g.strip().lower()}" for g in genres.split("|") if g.strip()]
    years = _YEAR.findall(title)
    if years:
        out.append(f"decade={int(years[-1]) // 10 * 10}")
    out.extend(_WORD.findall(_YEAR.sub(" ", title).lower()))
    return out


@register("content")
class Content(BaselineEstimates[ContentConfig]):
    """Content-based: TF-IDF item profiles, rating-weighted mean-centred user profiles."""

    capabilities = Capabilities(needs_item_metadata=True)
    gamma_: np.float64
    """weight of the content score in the predicted rating"""
    vocabulary_: np.ndarray
    """the metadata tokens (genre=..., decade=..., title words), one per feature column"""
    idf_: np.ndarray
    """inverse document frequency of each token of vocabulary_"""
    user_profiles_: np.ndarray
    """user profiles, users x features (rating-weighted mean of the profiles of the items the user
    rated)"""
    item_profiles_: sp.csr_matrix
    """TF-IDF item profiles, items x features (CSR, L2-normalized rows); r = mu + b_u + b_i + gamma
    * user_profiles_[u] . item_profiles_[i]"""
    user_axes: ClassVar[dict[str, int]] = {"user_profiles_": 0}

    def _fit(self, data: Interactions, training: Training) -> None:
        cfg = self.config
        assert data.item_meta is not None  # the base class refuses data without (capabilities)
        # imported here: scikit-learn takes a second or more to import, and every command that
        # loads the model registry would pay it (content is one model among many)
        from sklearn.feature_extraction.text import TfidfVectorizer

        docs = self._documents(data.items.ids, data.item_meta)
        try:
            vec = TfidfVectorizer(analyzer=metadata_tokens, min_df=cfg.min_df).fit(docs)
        except ValueError:  # no token in min_df items (a tiny catalogue): keep every token
            vec = TfidfVectorizer(analyzer=metadata_tokens).fit(docs + ["genre=none\t"])
        self.vocabulary_ = np.asarray(vec.get_feature_names_out(), dtype=str)
        self.idf_ = vec.idf_.astype(np.float64)
        self._vectorizer = vec
        X = sp.csr_matrix(vec.transform(docs), dtype=np.float64)  # items x features, L2 rows

        self._fit_baseline(data, cfg.reg_items, cfg.reg_users)

        R = data.matrix.tocoo()
        counts = np.bincount(R.row, minlength=data.n_users).astype(np.float64)
        means = np.bincount(R.row, weights=R.data, minlength=data.n_users) / np.maximum(counts, 1)
        w = R.data - means[R.row]
        W = sp.csr_matrix((w, (R.row, R.col)), shape=(data.n_users, data.n_items))
        n = np.maximum(counts, 1)[:, None]
        profiles = np.asarray((W @ X).todense()) / n  # mean of the weighted item profiles
        # leave-one-out score of every training pair: remove w_ui x_i from the mean profile
        full = np.einsum("ij,ij->i", profiles[R.row], np.asarray(X[R.col].todense()))
        self_sim = np.asarray(X.multiply(X).sum(axis=1)).ravel()[R.col]
        cnt = counts[R.row]
        loo = np.where(cnt > 1, (full * cnt - w * self_sim) / np.maximum(cnt - 1, 1), 0.0)
        resid = R.data - (self.mu_ + self.user_bias_[R.row] + self.item_bias_[R.col])
        self.gamma_ = np.float64(np.dot(loo, resid) / (np.dot(loo, loo) + cfg.reg))
        self.user_profiles_ = profiles
        self.item_profiles_ = X

    def _documents(self, item_ids: np.ndarray, meta: pd.DataFrame) -> list[str]:
        cfg = self.config
        m = meta.copy()
        m["item"] = m["item"].astype(str)
        m = m.drop_duplicates("item").set_index("item")
        genres = m["genres"] if "genres" in m and cfg.use_genres else pd.Series(dtype=object)
        titles = m["title"] if "title" in m and cfg.use_title else pd.Series(dtype=object)
        g = genres.reindex(item_ids).fillna("").astype(str).to_numpy()
        t = titles.reindex(item_ids).fillna("").astype(str).to_numpy()
        return [f"{a}\t{b}" for a, b in zip(g, t, strict=True)]

    def _after_load(self, folder: Path) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(
            analyzer=metadata_tokens,
            vocabulary={t: n for n, t in enumerate(self.vocabulary_.tolist())},
        )
        vec.idf_ = self.idf_
        self._vectorizer = vec

    def _content_scores(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        out = np.zeros(u.size)
        both = (u >= 0) & (i >= 0)
        X = self.item_profiles_
        rows = np.asarray(X[i[both]].todense())
        out[both] = np.einsum("ij,ij->i", self.user_profiles_[u[both]], rows)
        return out

    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        return self._baseline(u, i) + float(self.gamma_) * self._content_scores(u, i)

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        sims = np.asarray(self.item_profiles_ @ self.user_profiles_[u].T).T
        return self._baseline_scores(u) + float(self.gamma_) * sims

    def score_new_items(self, users: Iterable, items: pd.DataFrame) -> pd.DataFrame:
        """Predicted ratings of items described by ``items`` (item, title, genres) for ``users``.

        The items need not be in the training data (cold start): their profiles come from the
        training vocabulary and IDF. Returns a frame ``user, item, score``.
        """
        self._check_fitted()
        ids = items["item"].astype(str).to_numpy(dtype=object)
        X = self._vectorizer.transform(self._documents(ids, items))
        user_ids = pd.Series(list(users), dtype=object).astype(str).to_numpy()
        u = self.user_vocab_.index(user_ids)
        profiles = np.where((u >= 0)[:, None], self.user_profiles_[np.maximum(u, 0)], 0.0)
        known_i = self.item_vocab_.index(ids)
        item_bias = np.where(known_i >= 0, self.item_bias_[np.maximum(known_i, 0)], 0.0)
        user_bias = np.where(u >= 0, self.user_bias_[np.maximum(u, 0)], 0.0)
        scores = (
            float(self.mu_)
            + user_bias[:, None]
            + item_bias[None, :]
            + float(self.gamma_) * np.asarray(X @ profiles.T).T
        )
        scores = np.clip(scores, *self.rating_scale_)
        return pd.DataFrame(
            {
                "user": np.repeat(user_ids, ids.size),
                "item": np.tile(ids, user_ids.size),
                "score": scores.ravel(),
            }
        )
