"""The accountant wrapper: its epsilon is dp-accounting's, its calibration meets the target."""

import dp_accounting
import pytest
from dp_accounting import pld, rdp

from recsys_core.exceptions import ConfigError
from recsys_core.privacy import accounting


@pytest.mark.parametrize(("sigma", "releases"), [(1.0, 1), (2.0, 10), (5.0, 6)])
def test_rdp_epsilon_is_the_librarys(sigma, releases):
    acc = rdp.RdpAccountant()
    acc.compose(dp_accounting.GaussianDpEvent(sigma), releases)
    assert accounting.epsilon(sigma, releases, 1e-6, "rdp") == pytest.approx(
        acc.get_epsilon(1e-6), rel=1e-12
    )


def test_pld_epsilon_is_the_librarys_within_its_discretization():
    acc = pld.PLDAccountant()  # the library's default, finer grid
    acc.compose(dp_accounting.GaussianDpEvent(3.0), 6)
    assert accounting.epsilon(3.0, 6, 1e-6, "pld") == pytest.approx(acc.get_epsilon(1e-6), rel=0.01)


def test_known_value_of_the_gaussian_mechanism():
    # one Gaussian release with sigma = 1 is (epsilon, 1e-5)-DP for epsilon ~ 4.4 by the exact
    # (PLD) analysis of Balle & Wang (2018); RDP is looser, never tighter
    exact = accounting.epsilon(1.0, 1, 1e-5, "pld")
    assert 4.2 < exact < 4.6
    assert accounting.epsilon(1.0, 1, 1e-5, "rdp") >= exact


@pytest.mark.parametrize("target", [0.5, 2.0, 10.0])
def test_calibrated_noise_meets_the_target(target):
    sigma = accounting.noise_multiplier_for(target, 1e-6, 6)
    got = accounting.epsilon(sigma, 6, 1e-6)
    assert got <= target + 1e-6 and got >= target * 0.99


def test_noise_grows_as_epsilon_shrinks():
    sigmas = [accounting.noise_multiplier_for(e, 1e-6, 6) for e in (10, 5, 2, 1, 0.5)]
    assert sigmas == sorted(sigmas) and len(set(sigmas)) == len(sigmas)


def test_noise_grows_with_the_number_of_releases():
    assert accounting.noise_multiplier_for(1, 1e-6, 20) > accounting.noise_multiplier_for(
        1, 1e-6, 2
    )


@pytest.mark.parametrize("eps", [0.0, -1.0, float("nan")])
def test_epsilon_must_be_positive(eps):
    with pytest.raises(ConfigError, match="greater than 0"):
        accounting.noise_multiplier_for(eps, 1e-6, 3)


@pytest.mark.parametrize("delta", [0.0, 1.0, 1.5, -1e-6])
def test_delta_must_lie_in_the_open_unit_interval(delta):
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        accounting.noise_multiplier_for(1.0, delta, 3)


def test_an_unreachable_target_is_refused():
    with pytest.raises(ConfigError, match="raise epsilon or delta"):
        accounting.noise_multiplier_for(1e-9, 1e-12, 1000)


def test_two_fits_compose_to_the_accountants_epsilon_of_every_release():
    # the evaluated model and its refit, 4 releases each: 8 Gaussian releases composed; more
    # than one fit's epsilon, less than the sum basic composition gives
    one = accounting.epsilon(3.0, 4, 1e-6, "rdp")
    both = accounting.composed_epsilon([(3.0, 4), (3.0, 4)], 1e-6, "rdp")
    assert both == pytest.approx(accounting.epsilon(3.0, 8, 1e-6, "rdp"), rel=1e-12)
    assert one < both < 2 * one
    mixed = accounting.composed_epsilon([(3.0, 4), (6.0, 2)], 1e-6, "pld")
    assert accounting.epsilon(3.0, 4, 1e-6, "pld") < mixed


def test_composing_nothing_is_refused():
    with pytest.raises(ConfigError, match="at least one fit"):
        accounting.composed_epsilon([], 1e-6)


@pytest.mark.parametrize("accountant", ["rdp", "pld"])
def test_split_noise_costs_what_the_uniform_noise_costs(accountant):
    # Gaussian releases compose by their inverse squared multipliers: a budget split in shares
    # costs what the same number of releases of the uniform multiplier cost
    sigma = accounting.noise_multiplier_for(2.0, 1e-6, 4, accountant)
    split = accounting.split_noise(sigma, [0.02, 0.78, 0.1, 0.1])
    assert split[1] < sigma < split[0]
    assert accounting.releases_epsilon(split, 1e-6, accountant) == pytest.approx(
        accounting.epsilon(sigma, 4, 1e-6, accountant), rel=0.02 if accountant == "pld" else 1e-9
    )
    assert accounting.releases_epsilon(split, 1e-6, accountant) == pytest.approx(2.0, rel=0.02)


def test_releases_epsilon_is_the_librarys_composition():
    acc = rdp.RdpAccountant()
    for sigma in (1.0, 3.0, 0.7):
        acc.compose(dp_accounting.GaussianDpEvent(sigma))
    assert accounting.releases_epsilon([1.0, 3.0, 0.7], 1e-6) == pytest.approx(
        acc.get_epsilon(1e-6), rel=1e-12
    )


@pytest.mark.parametrize("shares", [[], [0.5, 0.6], [1.2, -0.2], [0.0, 1.0]])
def test_bad_shares_are_refused(shares):
    with pytest.raises(ConfigError, match="shares"):
        accounting.split_noise(1.0, shares)
    with pytest.raises(ConfigError, match="at least one release"):
        accounting.releases_epsilon([], 1e-6)
