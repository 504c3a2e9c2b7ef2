"""The contract of every registered objective (scorefield.losses.OBJECTIVES): a hand
computation on fixed inputs (each case yields its checks), for every level mode of DSM. An objective registered without
a case here fails `test_every_registered_objective_is_in_the_suite`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scorefield.losses import OBJECTIVES, ObjectiveContext
from scorefield.noise import geometric

SIGMAS = geometric(2.0, 0.05, 8)
X0 = jnp.array([0.4, -1.2, 0.7], jnp.float32)  # a point mass in 3-D


def _build(name, sigma_min, **options):
    return OBJECTIVES.get(name).from_options(ObjectiveContext(SIGMAS, sigma_min), **OBJECTIVES.resolve(name, options))


def _dsm_case():
    # Data at one point x0 and the model s_c(x, sigma) = c (x - x0) / sigma^2: at x~ = x0 +
    # sigma z, sigma s + z = (1 + c) z, so loss(c) = (1 + c)^2 loss(0) for the same key (the
    # same draws) exactly, loss(-1) = 0 (the exact score of the point mass), and loss(0) =
    # 0.5 mean |z|^2, whose expectation is D/2 (std of the mean sqrt(D/2 / n) per level draw).
    x = jnp.broadcast_to(X0, (4096, 3))
    for levels in ("all", "random", "continuous"):
        obj = _build("dsm", 0.05, levels=levels)
        key = jax.random.PRNGKey(11)

        def loss(c, obj=obj, key=key):
            return float(obj(lambda y, s: c * (y - X0) / s**2, x, key=key))

        base = loss(0.0)
        n = x.shape[0] * (len(SIGMAS) if levels == "all" else 1)
        yield abs(base - 1.5) < 5 * np.sqrt(1.5 / n), (levels, base)
        yield loss(-1.0) < 1e-9, levels
        for c in (0.5, -0.3, -2.0):
            yield loss(c) == pytest.approx((1 + c) ** 2 * base, rel=1e-5), (levels, c)


def _linear(a, b):
    return lambda y, s: a @ y + b


def _fixed_inputs():
    rng = np.random.default_rng(0)
    return (jnp.asarray(rng.normal(size=(64, 3)), jnp.float32), jnp.asarray(rng.normal(size=(3, 3)), jnp.float32),
            jnp.asarray(rng.normal(size=3), jnp.float32))


def _exact_case():
    # sigma_min = 0: no perturbation; for s(x) = A x + b the loss is tr(A) + 0.5 mean |A x + b|^2
    x, a, b = _fixed_inputs()
    got = float(_build("exact", 0.0)(_linear(a, b), x, key=jax.random.PRNGKey(0)))
    xn, an, bn = (np.asarray(v, np.float64) for v in (x, a, b))
    want = np.trace(an) + 0.5 * np.mean(np.sum((xn @ an.T + bn) ** 2, axis=1))
    yield got == pytest.approx(want, rel=1e-5), (got, want)


def _ssm_case():
    # v^T A v = 0 for antisymmetric A whatever the directions v: the loss is exactly
    # 0.5 mean |A x + b|^2; adding a I adds a |v|^2 per projection, whose mean is a D
    x, a, b = _fixed_inputs()
    anti = a - a.T
    xn, bn = np.asarray(x, np.float64), np.asarray(b, np.float64)
    half = 0.5 * np.mean(np.sum((xn @ np.asarray(anti, np.float64).T + bn) ** 2, axis=1))
    obj = _build("ssm", 0.0, ssm_projections=3)
    got = float(obj(_linear(anti, b), x, key=jax.random.PRNGKey(1)))
    yield got == pytest.approx(half, rel=1e-5), (got, half)
    big = jnp.broadcast_to(x[:1], (20000, 3))
    s = _linear(2.0 * jnp.eye(3), jnp.zeros(3))
    got = float(obj(s, big, key=jax.random.PRNGKey(2)))
    want = 2.0 * 3 + 0.5 * 4.0 * float(jnp.sum(x[0] ** 2))
    yield abs(got - want) < 5 * 2.0 * np.sqrt(2 * 3 / (3 * 20000)), (got, want)


CASES = {"dsm": _dsm_case, "exact": _exact_case, "ssm": _ssm_case}


def test_every_registered_objective_is_in_the_suite():
    missing = set(OBJECTIVES.names()) - set(CASES)
    assert not missing, f"registered objectives without a contract case: {sorted(missing)}; add them to CASES"


@pytest.mark.parametrize("name", sorted(CASES))
def test_hand_computation_on_fixed_inputs(name):
    checks = list(CASES[name]())  # each case yields (holds, what was compared)
    assert checks
    for holds, what in checks:
        assert holds, (name, what)
