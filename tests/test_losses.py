"""Objectives on fixed inputs against hand computations."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scorefield.losses import DenoisingScoreMatching, ExactScoreMatching, SlicedScoreMatching, denoising_loss


class Linear(eqx.Module):
    """s(x, sigma) = (A x + b) / sigma: Jacobian A / sigma, known by hand."""

    a: jax.Array
    b: jax.Array

    def __call__(self, x, sigma):
        return (self.a @ x + self.b) / sigma


A = jnp.array([[-1.0, 0.5], [0.0, -2.0]])
B = jnp.array([0.1, -0.2])


def test_denoising_loss_matches_hand_computation():
    model = Linear(A, B)
    x = jnp.array([[1.0, 2.0]])
    sig = jnp.array([[0.5, 2.0]])
    z = jnp.array([[[1.0, 0.0], [0.0, -1.0]]])
    # level 0.5: x~ = (1.5, 2); sigma s = A x~ + b = (-1.5+1+0.1, -4-0.2) = (-0.4, -4.2); + z -> (0.6, -4.2)
    # level 2:   x~ = (1, 0);   sigma s = (-1+0.1, 0-0.2) = (-0.9, -0.2);             + z -> (-0.9, -1.2)
    hand = 0.5 * ((0.6**2 + 4.2**2) + (0.9**2 + 1.2**2)) / 2
    assert float(denoising_loss(model, x, sig, z)) == pytest.approx(hand, rel=1e-6)


def test_dsm_is_zero_for_the_exact_score_of_a_point_mass_limit():
    # For data at one point x0 the perturbed score is -(x~ - x0)/sigma^2 = -z/sigma: loss 0.
    class PointScore(eqx.Module):
        def __call__(self, x, sigma):
            return -(x - 1.0) / sigma**2

    x = jnp.ones((8, 2))
    obj = DenoisingScoreMatching(jnp.array([1.0, 0.1, 0.01]), levels="all")
    assert float(obj(PointScore(), x, key=jax.random.PRNGKey(0))) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("levels", ["all", "random", "continuous"])
def test_dsm_untrained_zero_model_gives_half_dimension(levels):
    # s = 0: loss = 0.5 E|z|^2 = D/2 at every level (2-D: 1.0, the reference's step-0 loss)
    zero = lambda x, sigma: jnp.zeros_like(x)  # noqa: E731
    x = jax.random.normal(jax.random.PRNGKey(1), (4096, 2))
    obj = DenoisingScoreMatching(jnp.array([1.0, 0.1, 0.01]), levels=levels)
    assert float(obj(zero, x, key=jax.random.PRNGKey(2))) == pytest.approx(1.0, abs=0.05)


def test_exact_score_matching_matches_hand_computation():
    model = Linear(A, B)
    x = jnp.array([[1.0, 2.0], [0.0, -1.0]])
    level = 1e-12  # sigma = 0: the model is evaluated at the guard level
    ax = (np.asarray(x) @ np.asarray(A).T + np.asarray(B)) / level
    hand = np.mean(np.trace(A) / level + 0.5 * np.sum(ax**2, axis=1))
    got = float(ExactScoreMatching(sigma=0.0)(model, x, key=jax.random.PRNGKey(0)))
    assert got == pytest.approx(hand, rel=1e-5)


def test_sliced_score_matching_is_unbiased_for_the_trace():
    # E_v[v^T J v] = tr(J) for v ~ N(0, I): with many projections SSM -> exact SM.
    model = Linear(A, B)
    x = jnp.array([[1.0, 2.0], [0.0, -1.0]])
    exact = float(ExactScoreMatching(sigma=0.0)(lambda y, s: model(y, 1.0), x, key=jax.random.PRNGKey(0)))
    ssm = float(SlicedScoreMatching(sigma=0.0, n_projections=20_000)(lambda y, s: model(y, 1.0), x, key=jax.random.PRNGKey(3)))
    # v^T A v has variance 2 |sym(A)|_F^2 = 2 * 5.125 over 20,000 draws: s.e. 0.016
    assert ssm == pytest.approx(exact, abs=0.08)
