"""Objectives on fixed inputs against hand computations."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scorefield._errors import ConfigError
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


def test_second_order_residual_matches_hand_computation():
    # s = (A x~ + b)/sigma, J = A/sigma: r = sigma v.A v + |v|^2 - (v.(z + A x~ + b))^2
    from scorefield.losses import second_order_residual

    model, sig = Linear(A, B), 0.5
    x, z, v = jnp.array([1.0, 2.0]), jnp.array([1.0, -1.0]), jnp.array([1.0, -1.0])
    xt = x + sig * z  # (1.5, 1.5)
    s, r = second_order_residual(model, xt, jnp.float32(sig), z, v)
    # A x~ + b = (-0.75 + 0.1, -3 - 0.2) = (-0.65, -3.2); v.A v = -1 - 0.5 - 2 = -3.5
    w = np.array([1.0 - 0.65, -1.0 - 3.2])
    hand = sig * -3.5 + 2.0 - (w[0] - w[1]) ** 2
    assert np.allclose(s, np.array([-0.65, -3.2]) / sig, rtol=1e-6)
    assert float(r) == pytest.approx(hand, rel=1e-6)


@pytest.mark.parametrize("c", [1.0, 0.5])
def test_second_order_residual_has_mean_zero_only_at_the_exact_score(c):
    # Data N(0, s0^2 I): the exact smoothed score is -x/(s0^2 + sigma^2), and Tweedie's
    # second-order formula makes E[r] = 0 there. For the score scaled by c, with q = s0^2 +
    # sigma^2: E[r] = -c D sigma^2/q + D - D ((1 - c sigma^2/q)^2 + c^2 sigma^2 s0^2/q^2)
    # (0 at c = 1; 0.1324 at c = 0.5).
    from scorefield.losses import second_order_residual

    s0, sig, n = 0.5, 0.3, 200_000
    kx, kz, kv = jax.random.split(jax.random.PRNGKey(3), 3)
    x = s0 * jax.random.normal(kx, (n, 2))
    z = jax.random.normal(kz, (n, 2))
    v = jax.random.rademacher(kv, (n, 2), dtype=jnp.float32)
    model = lambda y, s: -c * y / (s0**2 + s**2)  # noqa: E731
    _, r = jax.vmap(lambda a, b, w: second_order_residual(model, a, jnp.float32(sig), b, w))(x + sig * z, z, v)
    mean, se = float(r.mean()), float(r.std() / np.sqrt(n))
    q = s0**2 + sig**2
    want = -c * 2 * sig**2 / q + 2 - 2 * ((1 - c * sig**2 / q) ** 2 + c**2 * sig**2 * s0**2 / q**2)
    assert abs(mean - want) < 4 * se and 4 * se < 0.05, (mean, se, want)


def test_dsm_second_order_adds_to_the_first_order_loss_and_refuses_all_levels():
    from scorefield._errors import ConfigError

    model = Linear(A, B)
    x = jax.random.normal(jax.random.PRNGKey(4), (64, 2))
    sig = jnp.array([1.0, 0.1])
    first = DenoisingScoreMatching(sig, levels="continuous")(model, x, key=jax.random.PRNGKey(5))
    both = DenoisingScoreMatching(sig, levels="continuous", second_order=0.3)(model, x, key=jax.random.PRNGKey(5))
    assert float(both) > float(first) > 0  # the same draws; the added term is a mean square
    # on a quarter of the batch: the same first-order part (same draws) plus a smaller sample of r^2
    part = DenoisingScoreMatching(sig, levels="continuous", second_order=0.3, second_order_fraction=0.25)
    assert float(part(model, x, key=jax.random.PRNGKey(5))) > float(first)
    tiny = DenoisingScoreMatching(sig, levels="continuous", second_order=1e-12, second_order_fraction=0.25)
    assert float(tiny(model, x, key=jax.random.PRNGKey(5))) == pytest.approx(float(first), rel=1e-6)
    with pytest.raises(ConfigError, match="second_order"):
        DenoisingScoreMatching(sig, levels="all", second_order=0.3)


def test_antithetic_pairs_cancel_the_noise_term_of_the_gradient():
    # s(x, sigma) = c, a constant: the loss is 0.5 mean |sigma c + z|^2, whose gradient in c
    # at c = 0 is mean(sigma z). With antithetic pairs (+z, -z at the same sigma) it is
    # exactly 0; with independent noise it is not.
    class Const(eqx.Module):
        c: jax.Array

        def __call__(self, x, sigma):
            return self.c

    x = jax.random.normal(jax.random.PRNGKey(6), (64, 2))
    sig = jnp.array([1.0, 0.01])

    def grad(antithetic):
        obj = DenoisingScoreMatching(sig, levels="continuous", antithetic=antithetic)
        return eqx.filter_grad(lambda m: obj(m, x, key=jax.random.PRNGKey(7)))(Const(jnp.zeros(2))).c

    assert np.allclose(grad(True), 0.0, atol=1e-7)
    assert np.abs(grad(False)).max() > 1e-3
    # the loss of the zero model is still D/2 in expectation (each pair is two N(0, I) draws)
    zero = lambda y, s: jnp.zeros_like(y)  # noqa: E731
    big = jax.random.normal(jax.random.PRNGKey(8), (4096, 2))
    obj = DenoisingScoreMatching(sig, levels="continuous", antithetic=True)
    assert float(obj(zero, big, key=jax.random.PRNGKey(9))) == pytest.approx(1.0, abs=0.05)


def test_log_normal_draw_trains_on_the_log_normal_sigmas_and_needs_continuous_levels():
    # sigma s(x, sigma) = ln(sigma) (one coordinate) makes the loss 0.5 (E[ln^2 sigma] + 1),
    # so the loss reads the law of the drawn sigmas: ln m^2 + spread^2 under the log-normal
    # draw (range far wider than the spread), against (ln^2 a + ln a ln b + ln^2 b) / 3 for
    # the log-uniform one
    model = lambda y, s: jnp.log(s) / s * jnp.ones_like(y)  # noqa: E731
    x = jnp.zeros((100_000, 1))
    sig = jnp.array([1e4, 1e-6])
    ln = DenoisingScoreMatching(sig, levels="continuous", sigma_draw="log_normal", sigma_median=0.15, sigma_spread=0.5)
    m2 = np.log(0.15) ** 2 + 0.25
    assert float(ln(model, x, key=jax.random.PRNGKey(3))) == pytest.approx(0.5 * (m2 + 1), rel=0.01)
    lu = DenoisingScoreMatching(sig, levels="continuous")
    a, b = np.log(1e-6), np.log(1e4)
    assert float(lu(model, x, key=jax.random.PRNGKey(3))) == pytest.approx(0.5 * ((a * a + a * b + b * b) / 3 + 1),
                                                                           rel=0.02)
    with pytest.raises(ConfigError, match="sigma_draw"):
        DenoisingScoreMatching(sig, levels="random", sigma_draw="log_normal", sigma_median=0.1)


def test_log_normal_median_defaults_to_edm_ratio_of_the_data_std():
    from scorefield.losses import ObjectiveContext
    from scorefield.losses import OBJECTIVES

    ctx = ObjectiveContext(sigmas=jnp.array([10.0, 0.01]), sigma_min=0.01, sigma_data=0.25)
    obj = OBJECTIVES.get("dsm").from_options(ctx, levels="continuous", sigma_draw="log_normal")
    assert obj.sigma_median == pytest.approx(0.15)  # exp(-1.2) / 0.5 x 0.25
    with pytest.raises(ConfigError, match="sigma_median"):
        OBJECTIVES.get("dsm").from_options(ObjectiveContext(sigmas=jnp.array([10.0, 0.01]), sigma_min=0.01),
                                           levels="continuous", sigma_draw="log_normal")


def test_edm_weighting_multiplies_each_term_by_one_plus_sigma_over_sigma_data_squared():
    from scorefield.losses import OBJECTIVES, ObjectiveContext

    model = Linear(A, B)
    x = jnp.array([[1.0, 2.0]])
    sig = jnp.array([[0.5, 2.0]])
    z = jnp.array([[[1.0, 0.0], [0.0, -1.0]]])
    sd = 0.5
    # the two terms of test_denoising_loss_matches_hand_computation, times 1 + (sig/sd)^2 = 2 and 17
    hand = 0.5 * (2.0 * (0.6**2 + 4.2**2) + 17.0 * (0.9**2 + 1.2**2)) / 2
    assert float(denoising_loss(model, x, sig, z, weight_std=sd)) == pytest.approx(hand, rel=1e-6)
    ctx = ObjectiveContext(sigmas=jnp.array([10.0, 0.01]), sigma_min=0.01, sigma_data=sd)
    obj = OBJECTIVES.get("dsm").from_options(ctx, levels="continuous", weighting="edm")
    assert obj.weight_std == sd
    assert OBJECTIVES.get("dsm").from_options(ctx, levels="continuous").weight_std is None
    with pytest.raises(ConfigError, match="weighting"):
        OBJECTIVES.get("dsm").from_options(ObjectiveContext(sigmas=jnp.array([10.0, 0.01]), sigma_min=0.01),
                                           levels="continuous", weighting="edm")
