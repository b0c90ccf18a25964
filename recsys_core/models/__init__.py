"""Recommender models, found by name in one registry (``recsys_core.models.registry``)."""

from recsys_core.models.base import ModelConfig, Recommender
from recsys_core.models.registry import available, create, describe, get_model_class, register

__all__ = [
    "ModelConfig",
    "Recommender",
    "available",
    "create",
    "describe",
    "get_model_class",
    "register",
]
