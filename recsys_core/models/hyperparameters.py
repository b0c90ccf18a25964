"""Declarations of the hyperparameters that several families share: the same name, bounds and
wording in every family's config, written once here (a family passes only its default).

A config declares ``factors: int = hp.factors(10, most=2048)`` where it would write the whole
``Field(...)``; what a family alone has stays a plain ``Field`` in its own module.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field


def factors(default: int, *, most: int = 4096) -> Any:
    """The number of latent factors, 1 to ``most``."""
    return Field(default, ge=1, le=most, description="number of latent factors")


def sweeps(default: int, *, most: int = 1000, what: str = "alternating sweeps") -> Any:
    """Alternating (ALS) sweeps, or ``what`` the family calls its passes, 1 to ``most``."""
    return Field(default, ge=1, le=most, description=what)


def epochs(default: int) -> Any:
    """Passes of an SGD family over the training ratings."""
    return Field(default, ge=1, le=10_000, description="passes over the training ratings")


def learning_rate(default: float, *, what: str = "learning rate") -> Any:
    """A step size (SGD, Adam) or a boosting shrinkage, in (0, 1]."""
    return Field(default, gt=0, le=1.0, description=what)


def sgd_reg(default: float) -> Any:
    """L2 regularization of an SGD family's biases and factors."""
    return Field(default, ge=0, description="L2 regularization of biases and factors")


def weighted_lambda(default: float, *, positive: bool = False, of: str = "") -> Any:
    """ALS's weighted-lambda regularization (``positive``: zero refused), ``of`` what."""
    return Field(
        default,
        gt=0 if positive else None,
        ge=None if positive else 0,
        description=f"weighted-lambda regularization{of}",
    )


def baseline_reg(default: float, *, of: str) -> Any:
    """Shrinkage of the ``of`` (``"item"``, ``"user"``) biases of the baseline estimates that a
    family adds its own term to (``recsys_core.models.baselines.BaselineEstimates``)."""
    return Field(default, ge=0, description=f"shrinkage of the baseline's {of} biases")


def init_std(*, of: str = "factor") -> Any:
    """Standard deviation of the normal initialization of the ``of`` factors (0.1)."""
    return Field(0.1, ge=0, description=f"std of the normal {of} initialization")


def biased() -> Any:
    """Whether a rating family learns the global mean and the biases (on by default)."""
    return Field(True, description="learn the global mean and user/item biases")


def seed(what: str) -> Any:
    """The random seed (42), ``what`` it draws: ``"(initialization)"``, ``"of the chain"``."""
    return Field(42, description=f"random seed {what}")


def use_ratings() -> Any:
    """Whether the interactions of an implicit family are weighted by their rating (off)."""
    return Field(False, description="weight interactions by rating (else 1)")


def half_life_days() -> Any:
    """The time decay of the interactions (``recsys_core.models.user_items``), off by default."""
    return Field(
        None,
        gt=0,
        description="time decay: an interaction this many days older than the "
        "latest weighs half (None: off)",
    )
