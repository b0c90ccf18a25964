"""The privacy loss of ``releases`` Gaussian mechanisms, by Google's ``dp-accounting``.

A model that adds Gaussian noise of standard deviation ``noise_multiplier * sensitivity`` to
``releases`` statistics (each of L2 sensitivity ``sensitivity`` with respect to one user's whole
data) is ``(epsilon, delta)``-DP with the epsilon the accountant computes for the composition of
``releases`` Gaussian mechanisms. Two accountants: ``rdp`` (Rényi DP, Mironov 2017) and ``pld``
(privacy loss distributions, tighter). The noise for a target epsilon is found by the library's
``calibrate_dp_mechanism`` (a bracketed root search over the accountant), never by a closed
formula.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from recsys_core.exceptions import ConfigError

if TYPE_CHECKING:
    import dp_accounting

# dp-accounting is imported where it is used: loading it (scipy.optimize, scipy.signal, ~1 s)
# is not paid by every process that lists the models

Accountant = Literal["rdp", "pld"]

MAX_NOISE_MULTIPLIER = 1e4
"""Largest noise multiplier the calibration searches (a target beyond it is refused)."""
MIN_NOISE_MULTIPLIER = {"rdp": 0.01, "pld": 0.3}
"""Smallest noise multiplier searched per accountant (below 0.3 the PLD accountant's grids grow
without bound); a budget that needs less noise gets this much, which is more private than asked."""


def _accountant(kind: Accountant) -> dp_accounting.PrivacyAccountant:
    from dp_accounting import pld, rdp

    if kind == "rdp":
        return rdp.RdpAccountant()
    if kind == "pld":
        # a coarser grid than the default 1e-4: calibration takes seconds, not a minute
        return pld.PLDAccountant(value_discretization_interval=1e-3)
    raise ConfigError(f"unknown privacy accountant {kind!r}; use 'rdp' or 'pld'")


def event(noise_multiplier: float, releases: int) -> dp_accounting.DpEvent:
    """``releases`` Gaussian mechanisms of noise multiplier ``noise_multiplier``, composed."""
    import dp_accounting

    return dp_accounting.SelfComposedDpEvent(
        dp_accounting.GaussianDpEvent(noise_multiplier), releases
    )


def epsilon(
    noise_multiplier: float, releases: int, delta: float, accountant: Accountant = "rdp"
) -> float:
    """The epsilon at ``delta`` of ``releases`` Gaussian releases with ``noise_multiplier``."""
    acc = _accountant(accountant)
    acc.compose(event(noise_multiplier, releases))
    return float(acc.get_epsilon(delta))


def composed_epsilon(
    fits: list[tuple[float, int]], delta: float, accountant: Accountant = "rdp"
) -> float:
    """The epsilon at ``delta`` of several fits released on the same users' data, each a
    ``(noise_multiplier, releases)`` pair: every Gaussian release of every fit composed by
    ``accountant`` (tighter than the sum of the fits' epsilons, which basic composition gives).

    A training run that registers the evaluated model and its refit on all rows releases two
    fits: its privacy loss is this composition, not either fit's own epsilon.
    """
    if not fits:
        raise ConfigError("composed_epsilon needs at least one fit")
    acc = _accountant(accountant)
    for noise_multiplier, releases in fits:
        acc.compose(event(noise_multiplier, releases))
    return float(acc.get_epsilon(delta))


def check_target(target_epsilon: float, delta: float) -> None:
    """Refuse a target that no noise can meet, saying what to change."""
    if not target_epsilon > 0:
        raise ConfigError(
            f"epsilon={target_epsilon} is not a privacy budget: it must be greater than 0 "
            "(typical values 0.5 to 10; leave it unset for a non-private model)"
        )
    if not 0 < delta < 1:
        raise ConfigError(
            f"delta={delta} must lie strictly between 0 and 1; use a value well below "
            "1/number of users, e.g. 1e-6"
        )


def noise_multiplier_for(
    target_epsilon: float, delta: float, releases: int, accountant: Accountant = "rdp"
) -> float:
    """The smallest noise multiplier whose ``releases``-fold composition is
    ``(target_epsilon, delta)``-DP by ``accountant`` (``dp_accounting.calibrate_dp_mechanism``)."""
    check_target(target_epsilon, delta)
    if releases < 1:
        raise ConfigError(f"releases must be at least 1, got {releases}")
    if epsilon(MAX_NOISE_MULTIPLIER, releases, delta, accountant) > target_epsilon:
        raise ConfigError(
            f"epsilon={target_epsilon} at delta={delta} over {releases} releases needs a noise "
            f"multiplier above {MAX_NOISE_MULTIPLIER:g}: raise epsilon or delta, or lower the "
            "number of iterations"
        )
    lowest = MIN_NOISE_MULTIPLIER[accountant]
    if epsilon(lowest, releases, delta, accountant) <= target_epsilon:
        return lowest
    import dp_accounting

    return float(
        dp_accounting.calibrate_dp_mechanism(
            lambda: _accountant(accountant),
            lambda sigma: event(sigma, releases),
            target_epsilon,
            delta,
            bracket_interval=dp_accounting.LowerEndpointAndGuess(lowest, 1.0),
            tol=1e-4,
        )
    )


def split_noise(noise_multiplier: float, shares: list[float]) -> list[float]:
    """Per-release noise multipliers that spend a budget in ``shares``: ``len(shares)`` releases
    of multiplier ``noise_multiplier`` each cost what releases ``k`` of multiplier
    ``noise_multiplier / sqrt(len(shares) * shares[k])`` cost (Gaussian mechanisms compose by
    adding their inverse squared multipliers, exactly under RDP and the Gaussian privacy loss
    distribution), so a release with a larger share gets less noise. Shares must be positive and
    sum to 1."""
    if not shares or any(s <= 0 for s in shares) or abs(sum(shares) - 1.0) > 1e-9:
        raise ConfigError(f"budget shares {shares!r} must be positive and sum to 1")
    n = len(shares)
    return [noise_multiplier / (n * s) ** 0.5 for s in shares]


def releases_epsilon(
    noise_multipliers: list[float], delta: float, accountant: Accountant = "rdp"
) -> float:
    """The epsilon at ``delta`` of Gaussian releases with the given multipliers, each composed
    as its own event by ``accountant``."""
    if not noise_multipliers:
        raise ConfigError("releases_epsilon needs at least one release")
    import dp_accounting

    acc = _accountant(accountant)
    for sigma in noise_multipliers:
        acc.compose(dp_accounting.GaussianDpEvent(sigma))
    return float(acc.get_epsilon(delta))
