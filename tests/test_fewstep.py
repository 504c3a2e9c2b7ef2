"""Few-step samplers (euler, heun, dpm2m, dpm3m): convergence orders against a tight reference
solve, exact Gaussian moments, exact evaluation counts, bad options."""

from __future__ import annotations

import math

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import scorefield.samplers as S
from scorefield import ConfigError
from scorefield.samplers._schedules import log_uniform_sigmas, rho_sigmas

from _gauss import COV, MEAN

# SPEC section 2's mixture: means (0.5, 0.5) and (-0.5, -0.5), std 0.4, weights 1/2.
MU = np.array([[0.5, 0.5], [-0.5, -0.5]])
SD = 0.4
SMAX, SMIN = 2.0, 0.01


def mixture_score(x, sigma):
    def logp(x):
        var = SD**2 + sigma**2
        mu = jnp.asarray(MU, x.dtype)
        return jax.nn.logsumexp(-0.5 * jnp.sum((x - mu) ** 2, -1) / var)

    return jax.grad(logp)(x)


def make(name, nfe, **kw):
    return S.SAMPLERS.get(name)(SMAX, SMIN, nfe, **kw)


@pytest.fixture(scope="module")
def reference():
    """32 prior points and their exact flow to sigma_min followed by the denoising step,
    from diffrax's Tsit5 in float64 at tolerance 1e-11."""
    x0 = np.asarray(SMAX * jax.random.normal(jax.random.key(7), (32, 2)), np.float32)
    with jax.enable_x64(True):

        def flow(x):
            def f(t, x, a):
                return -jnp.exp(2 * t) * mixture_score(x, jnp.exp(t))

            sol = diffrax.diffeqsolve(
                diffrax.ODETerm(f), diffrax.Tsit5(), math.log(SMAX), math.log(SMIN), None, x,
                stepsize_controller=diffrax.PIDController(rtol=1e-11, atol=1e-11), max_steps=100_000,
            )
            y = sol.ys[-1]
            return y + SMIN**2 * mixture_score(y, SMIN)

        ref = np.asarray(jax.jit(jax.vmap(flow))(jnp.asarray(x0, jnp.float64)))
    return x0, ref


def _errors(reference, name, kw, nfes):
    """Final-sample RMS errors against the reference at each NFE (the counts checked too)."""
    x0, ref = reference
    errs = []
    for nfe in nfes:
        sampler = make(name, nfe, **kw)
        assert sampler.n_evals == nfe
        out = S.sample(sampler, mixture_score, jax.random.key(0), n=len(x0), init=x0)
        assert out.n_score_evals_per_sample == nfe
        errs.append(float(np.sqrt(np.mean(np.sum((out.samples - ref) ** 2, -1)))))
    return errs


@pytest.mark.parametrize(
    "name, kw, nfes, order",
    [
        ("euler", {}, (12, 24, 48), 1.0),
        ("heun", {}, (13, 25, 49), 2.0),
        ("dpm2m", {}, (12, 24, 48), 2.0),
        ("dpm2m", {"schedule": "log-uniform"}, (12, 24, 48), 2.0),
    ],
)
def test_convergence_order(reference, name, kw, nfes, order):
    """Final-sample RMS error against the reference falls as NFE^-order: the log-log slope
    over NFE 12..49 is within 0.25 of -order (an order-1 method would miss by 1; float64
    runs of the same grids over NFE 5..129 gave local slopes euler -1.12..-1.01,
    heun -2.35..-2.02, dpm2m -2.33..-2.04, approaching the order from above)."""
    errs = _errors(reference, name, kw, nfes)
    slope = np.polyfit(np.log(nfes), np.log(errs), 1)[0]
    assert abs(slope + order) < 0.25, f"{name} {kw}: errors {errs}, slope {slope:.2f}, expected -{order}"


def test_dpm3m_order(reference):
    """DPM-Solver++(3M): third-order steps after a first-order first step and a
    second-order second one. That first step's O(h^2) local error makes the asymptotic
    order 2, but over NFE 12..48 the third-order body dominates: the fitted slope lies in
    [-3.25, -2.45] (measured -2.73; dpm2m's is -2.2 on the same grids) and the error at 48
    evaluations is under half of dpm2m's."""
    nfes = (12, 24, 48)
    errs = _errors(reference, "dpm3m", {}, nfes)
    slope = np.polyfit(np.log(nfes), np.log(errs), 1)[0]
    assert -3.25 < slope < -2.45, f"dpm3m: errors {errs}, slope {slope:.2f}"
    assert errs[-1] < 0.5 * _errors(reference, "dpm2m", {}, nfes[-1:])[0], errs


def test_dpm3m_weights():
    """The multistep weights: each step's weights on x and the denoised values sum to 1 (a
    constant D is a fixed point: x = D stays), and on a geometric grid the third-order
    weights integrate e^(v-h) times a quadratic in v exactly (compared with quadrature)."""
    from scorefield.samplers._dpm3m import multistep_weights

    s = rho_sigmas(2.0, 0.01, 12, 7.0)
    w = multistep_weights(s)
    np.testing.assert_allclose(w[:, :4].sum(1), 1.0, atol=1e-12)
    assert np.all(w[:, 4] == 0.0)  # eta = 0: no noise
    lam = -np.log(s)
    i = 5
    h = lam[i + 1] - lam[i]
    coef = np.array([0.3, -1.1, 0.7])  # D(lambda) = quadratic in v = lambda - lambda_i
    d = lambda v: coef[0] + coef[1] * v + coef[2] * v * v  # noqa: E731
    v = np.linspace(0.0, h, 20001)
    f = np.exp(v - h) * d(v)
    exact = np.sum((f[1:] + f[:-1]) * 0.5 * np.diff(v))  # e^-h int_0^h e^v D dv
    got = w[i, 1] * d(0.0) + w[i, 2] * d(lam[i - 1] - lam[i]) + w[i, 3] * d(lam[i - 2] - lam[i])
    np.testing.assert_allclose(got, exact, rtol=1e-7)


def test_pure_steps_float64():
    """The pure step functions are dtype-generic: in float64 Heun reaches the 1e-6 errors
    float32 cannot, still at order 2, and a Heun step of a linear field is exact to
    second order in h (compared with the closed-form flow of a Gaussian)."""
    from scorefield.samplers._heun import heun_step

    with jax.enable_x64(True):
        c = jnp.asarray(COV)
        m = jnp.asarray(MEAN)

        def score(x, s):
            return -jnp.linalg.solve(c + s**2 * jnp.eye(2), x - m)

        def exact(x, s0, s1):  # x - m scales by (C + s1^2)^{1/2} (C + s0^2)^{-1/2}
            w, v = np.linalg.eigh(np.asarray(COV))
            a = v @ np.diag(np.sqrt((w + s1**2) / (w + s0**2))) @ v.T
            return MEAN + a @ (np.asarray(x) - MEAN)

        x = jnp.asarray([1.3, -0.4])
        errs = []
        for h in (0.1, 0.05, 0.025):
            y = heun_step(score, x, 1.0, 1.0 - h)
            assert y.dtype == jnp.float64
            errs.append(float(np.linalg.norm(np.asarray(y) - exact(x, 1.0, 1.0 - h))))
        local = np.polyfit(np.log([0.1, 0.05, 0.025]), np.log(errs), 1)[0]
        assert abs(local - 3.0) < 0.2, f"local error {errs}, slope {local:.2f}, expected 3"


def gauss_score(x, sigma):
    c = jnp.asarray(COV, jnp.float32) + sigma**2 * jnp.eye(2)
    return -jnp.linalg.solve(c, x - jnp.asarray(MEAN, jnp.float32))


@pytest.mark.parametrize(
    "name, nfe, kw",
    [("euler", 200, {}), ("heun", 41, {}), ("dpm2m", 40, {}), ("heun", 61, {"churn": 5.0, "s_tmin": 0.2}),
     ("dpm3m", 40, {"eta": 1.0})],
)
def test_gaussian_moments(name, nfe, kw):
    """Started from the exact p_{sigma_max} = N(m, C + sigma_max^2 I), the flow gives
    N(m, C + sigma_min^2 I) and the denoiser D(x) = m + C (C + sigma_min^2 I)^{-1} (x - m),
    so the samples have mean m and covariance C (C + sigma_min^2 I)^{-1} C: match within
    4.5 Monte-Carlo standard errors (20,000 samples; churn and dpm3m's eta keep the marginals in theory;
    s_tmin > sigma_min so that the last step denoises at sigma_min itself)."""
    smin = 0.1
    sampler = S.SAMPLERS.get(name)(SMAX, smin, nfe, **kw)
    n = 20_000
    c0 = COV + SMAX**2 * np.eye(2)
    z = np.asarray(jax.random.normal(jax.random.key(3), (n, 2)), np.float64)
    x0 = (MEAN + z @ np.linalg.cholesky(c0).T).astype(np.float32)
    x = S.sample(sampler, gauss_score, jax.random.key(1), n=n, init=x0).samples.astype(np.float64)
    want_c = COV @ np.linalg.solve(COV + smin**2 * np.eye(2), COV)
    dm = (x.mean(0) - MEAN) / (x.std(0) / np.sqrt(n))
    xc = x - MEAN
    prod = xc[:, :, None] * xc[:, None, :]
    dc = (prod.mean(0) - want_c) / (prod.std(0) / np.sqrt(n))
    assert np.all(np.abs(dm) < 4.5), f"mean {x.mean(0)} vs {MEAN}: z={dm}"
    assert np.all(np.abs(dc) < 4.5), f"cov {prod.mean(0).ravel()} vs {want_c.ravel()}: z={dc.ravel()}"


class Counter:
    """A score function that counts its evaluations on the host (one per particle)."""

    def __init__(self):
        self.calls = 0

    def _add(self, x):
        self.calls += int(np.prod(x.shape[:-1]))
        return np.zeros(x.shape, np.float32)

    def __call__(self, x, sigma):
        zero = jax.pure_callback(self._add, jax.ShapeDtypeStruct(x.shape, jnp.float32), x, vmap_method="expand_dims")
        return gauss_score(x, sigma) + zero


@pytest.mark.parametrize(
    "name, nfe, used", [("euler", 10, 10), ("heun", 10, 9), ("dpm2m", 2, 2), ("heun", 3, 3), ("dpm3m", 7, 7)]
)
def test_evaluation_count(name, nfe, used):
    """The count the runner reports equals the calls counted on the host, and `n_evals`."""
    sampler = make(name, nfe, **({"churn": 5.0} if name == "heun" else {}))
    counter = Counter()
    n = 2048
    out = S.sample(sampler, counter, jax.random.key(0), n=n, dim=2, block_size=1024)
    assert sampler.n_evals == used
    assert out.n_score_evals_per_sample == used
    assert counter.calls == used * n


@pytest.mark.parametrize("name", ["euler", "dpm2m", "dpm3m"])
def test_denoising_step_is_inside_the_scan(name):
    """Where the step rule to sigma = 0 is the denoiser, the score is traced once for a whole
    sample (one compiled program holds the network), and that last step is exactly
    D(x, sigma_min) = x + sigma_min^2 s(x, sigma_min) of the position before it."""
    traces = []

    def score(x, sigma):
        traces.append(1)  # runs while JAX traces, not per evaluation
        return mixture_score(x, sigma)

    sampler = make(name, 6)
    assert sampler.denoise_in_scan and sampler.steps_per_level == 6
    x0 = np.asarray(SMAX * jax.random.normal(jax.random.key(3), (16, 2)), np.float32)
    out = S.sample(sampler, score, jax.random.key(0), n=16, init=x0, trajectory_every=1)
    assert len(traces) == 1
    assert out.n_score_evals_per_sample == 6
    before = out.trajectory[-3]  # frames: start, after each of the 6 steps, the samples
    expected = before + SMIN**2 * np.asarray(jax.vmap(mixture_score, (0, None))(before, SMIN))
    np.testing.assert_allclose(out.samples, expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(out.trajectory[-1], out.samples)


def test_frame_sigmas_and_labels_follow_the_grid():
    """A few-step sampler's one level crosses its whole grid: the frame after step t is at
    sigma_{t+1}, the denoising step's at 0; a multi-level sampler's frames are at their level's sigma."""
    from scorefield.plot import frame_label

    sampler = make("dpm3m", 6)
    grid = np.asarray(sampler.sigmas)
    assert [sampler.frame_sigma(0, t) for t in range(5)] == pytest.approx(grid[1:].tolist())
    assert sampler.frame_sigma(0, 5) == 0.0
    assert frame_label(sampler, 0, 2) == f"step 3/6, σ = {grid[3]:.3g}"
    assert frame_label(sampler, -1, 0) == "start" and frame_label(sampler, 1, 0) == "samples"
    pc = S.PredictorCorrector(np.geomspace(SMAX, SMIN, 4), 1, 0.16)
    assert pc.frame_sigma(2, 0) == pytest.approx(float(np.geomspace(SMAX, SMIN, 4)[2]))
    assert frame_label(pc, 2, 0).startswith("level 2, step 1/")


def test_schedules():
    """EDM's rho spacing: both end points, (sigma^(1/rho)) linear in i; rho -> inf tends
    to log-uniform; log-uniform is geometric."""
    s = rho_sigmas(80.0, 0.002, 18, 7.0)
    assert s[0] == 80.0 and s[-1] == 0.002
    np.testing.assert_allclose(np.diff(s ** (1 / 7.0), 2), 0.0, atol=1e-12)
    g = log_uniform_sigmas(2.0, 0.01, 9)
    np.testing.assert_allclose(g[1:] / g[:-1], (0.005) ** (1 / 8), rtol=1e-12)
    np.testing.assert_allclose(rho_sigmas(2.0, 0.01, 9, 1e4), g, rtol=1e-3)
    assert np.all(np.diff(np.asarray(S.Heun(2.0, 0.01, 41).sigmas)) < 0)


@pytest.mark.parametrize(
    "name, kw, option",
    [
        ("euler", {"nfe": 0}, "nfe"),
        ("euler", {"nfe": 1}, "nfe"),
        ("dpm2m", {"nfe": 1}, "nfe"),
        ("heun", {"nfe": 2}, "nfe"),
        ("heun", {"nfe": 2.5}, "nfe"),
        ("heun", {"nfe": 9, "churn": -1.0}, "churn"),
        ("heun", {"nfe": 9, "churn": float("nan")}, "churn"),
        ("heun", {"nfe": 9, "churn": float("inf")}, "churn"),
        ("heun", {"nfe": 9, "s_noise": -0.5}, "s_noise"),
        ("heun", {"nfe": 9, "s_tmin": 1.0, "s_tmax": 0.5}, "s_tmax"),
        ("euler", {"nfe": 9, "rho": 0.0}, "rho"),
        ("dpm2m", {"nfe": 9, "rho": -7.0}, "rho"),
        ("heun", {"nfe": 9, "rho": float("nan")}, "rho"),
        ("heun", {"nfe": 9, "rho": float("inf")}, "rho"),
        ("dpm2m", {"nfe": 9, "schedule": "cosine"}, "schedule"),
        ("dpm3m", {"nfe": 1}, "nfe"),
        ("dpm3m", {"nfe": 9, "rho": float("nan")}, "rho"),
    ],
)
def test_bad_options(name, kw, option):
    cls = S.SAMPLERS.get(name)
    nfe = kw.pop("nfe")
    with pytest.raises(ConfigError, match=option) as err:
        cls(SMAX, SMIN, nfe, **kw)
    msg = str(err.value)
    assert "\n" not in msg and ("must" in msg or "not one of" in msg)


def test_bad_sigma_range():
    with pytest.raises(ConfigError, match="sigma_min"):
        S.Euler(0.01, 2.0, 10)
    with pytest.raises(ConfigError, match="sigma_max"):
        S.Heun(float("nan"), 0.01, 10)


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--sampler", "heun", "--nfe", "1"], "--nfe 1 must be an integer >= 3"),
        (["--sampler", "euler", "--nfe", "1"], "--nfe 1 must be an integer >= 2"),
        (["--sampler", "dpm2m", "--nfe", "0"], "--nfe"),
        (["--sampler", "heun", "--churn", "-1"], "--churn"),
        (["--sampler", "heun", "--churn", "nan"], "--churn"),
        (["--sampler", "dpm2m", "--rho", "inf"], "--rho"),
        (["--sampler", "euler", "--rho", "-7"], "--rho"),
    ],
)
def test_cli_bad_options_exit_2(tmp_path, capsys, flags, needle):
    """Through the CLI: exit 2 and one line on stderr naming the flag and the valid range."""
    from scorefield.cli import main

    argv = ["sample", "--exact", "toy:8gaussians", "--n", "10", "--out", str(tmp_path / "x.npy"), "--quiet", *flags]
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert needle in err and "must be" in err and len(err.splitlines()) == 1, err


def test_cli_prints_the_counted_evaluations(tmp_path, capsys):
    """`scorefield sample --sampler heun --nfe 10` uses and prints 9 evaluations per sample."""
    from scorefield.cli import main

    out = tmp_path / "x.npy"
    assert main(["sample", "--exact", "toy:8gaussians", "--n", "200", "--out", str(out), "--quiet",
                 "--sampler", "heun", "--nfe", "10"]) == 0
    assert "9.0 score evaluations per sample" in capsys.readouterr().out
    assert np.load(out).shape == (200, 2)


def _moment_z(x, want_mean, want_cov):
    """z-scores of the sample mean and second central moments against the wanted ones."""
    n = x.shape[0]
    dm = (x.mean(0) - want_mean) / (x.std(0) / np.sqrt(n))
    xc = x - want_mean
    prod = xc[:, :, None] * xc[:, None, :]
    dc = (prod.mean(0) - want_cov) / (prod.std(0) / np.sqrt(n))
    return np.abs(dm).max(), np.abs(dc).max()


def test_matched_prior_keeps_the_covariance():
    """A few-step sampler's default start for a context that knows the data's covariance is
    N(m, sigma_max^2 I + C), the moments of p_sigma_max: with the exact score of the
    Gaussian N(m, C) the flow then ends at the denoised target's moments (within 4.5
    standard errors, 10,000 samples). The plain prior N(m, sigma_max^2 I) misses C, and the deterministic
    flow carries that to the end: its covariance is off by many standard errors."""
    smax, smin, n = 0.5, 0.05, 10_000
    draws = np.asarray(MEAN + jax.random.normal(jax.random.key(11), (50_000, 2)) @ np.linalg.cholesky(COV).T)
    ctx = S.SamplerContext.from_points(draws, sigma_max=smax, sigma_min=smin)
    assert ctx.spread.shape == (2, 2)
    np.testing.assert_allclose(ctx.spread, COV, atol=2e-3)
    sampler = S.DPMSolver3M(smax, smin, 20)  # also dpm3m's moments test
    start = S.default_start(sampler, ctx)
    assert isinstance(start, S.MatchedGaussianInit)
    want_c = COV @ np.linalg.solve(COV + smin**2 * np.eye(2), COV)
    x = S.sample(sampler, gauss_score, jax.random.key(1), n=n, dim=2, init=start).samples.astype(np.float64)
    zm, zc = _moment_z(x, MEAN, want_c)
    assert zm < 4.5 and zc < 4.5, (zm, zc)
    plain = S.sample(sampler, gauss_score, jax.random.key(1), n=n, dim=2, init=ctx.prior(smax)).samples
    assert _moment_z(np.asarray(plain, np.float64), MEAN, want_c)[1] > 8


def test_matched_gaussian_init_moments_and_errors():
    """MatchedGaussianInit draws N(centre, sigma^2 I + spread) (matrix or scalar spread);
    a spread that is not a covariance is a ConfigError."""
    init = S.MatchedGaussianInit(0.3, MEAN, COV)
    keys = jax.random.split(jax.random.key(0), 40_000)
    x = np.asarray(jax.vmap(lambda k: init.sample(k, 2))(keys), np.float64)
    zm, zc = _moment_z(x, MEAN, COV + 0.09 * np.eye(2))
    assert zm < 4.5 and zc < 4.5, (zm, zc)
    np.testing.assert_allclose(np.asarray(S.MatchedGaussianInit(0.3, MEAN, 0.01).chol),
                               np.sqrt(0.1) * np.eye(2), rtol=1e-6)
    with pytest.raises(ConfigError, match="covariance"):
        S.MatchedGaussianInit(0.1, MEAN, -np.eye(2))
