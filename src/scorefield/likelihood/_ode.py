"""log p_model(x) through the probability-flow ODE of the VE process (SPEC section 6)."""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable, Sequence

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import ConfigError, DivergenceError, InputError
from .._types import ScoreFn
from ._trace import probes, resolve_trace, value_and_divergence

SOLVERS = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5}


@dataclasses.dataclass(frozen=True)
class LikelihoodResult:
    """What `log_likelihood` returns (host arrays, float64 where summed).

    Attributes:
        log_prob: (N,) log p_model(x) in nats: the Gaussian prior at sigma_max plus the
            integral of the divergence (the model's own log-density at sigma_min).
        log_prob_exact_prior: (N,) the same with `prior_log_prob` in place of the Gaussian
            prior, or None when none was given.
        prior_log_prob: (N,) log N(x(sigma_max); prior_centre, sigma_max^2 I).
        divergence_integral: (N,) int_{sigma_min}^{sigma_max} div_x(-sigma s(x, sigma)) dsigma
            along each point's path, i.e. log p(x(sigma_min)) - log p(x(sigma_max)).
        endpoints: (N, D) float32, x(sigma_max): where each point's path ends.
        sigma_min, sigma_max: the end points of the solve (data units).
        trace: "exact" or "hutchinson" (resolved from "auto").
        n_probes: Rademacher probes per point (D for the exact trace).
        n_score_evals_per_point: mean number of Jacobian-vector-product passes (each one
            score evaluation with its forward-mode tangents) one point cost.
        wall_time: seconds.
        n_failed: points whose solve failed (NaN in every per-point array; only with
            `on_failure="nan"`).
    """

    log_prob: np.ndarray
    log_prob_exact_prior: np.ndarray | None
    prior_log_prob: np.ndarray
    divergence_integral: np.ndarray
    endpoints: np.ndarray
    sigma_min: float
    sigma_max: float
    trace: str
    n_probes: int
    n_score_evals_per_point: float
    wall_time: float
    n_failed: int = 0

    @property
    def dim(self) -> int:
        return int(self.endpoints.shape[1])

    @property
    def prior_mismatch(self) -> float | None:
        """Mean over the points of log p_exact,sigma_max(x(sigma_max)) - log N(x(sigma_max); c,
        sigma_max^2 I), the part of -log p_model owed to the Gaussian prior; None without
        `prior_log_prob`."""
        if self.log_prob_exact_prior is None:
            return None
        return float(np.mean(self.log_prob_exact_prior - self.log_prob))


def _finite_positive(v, name: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={v!r} is not a number; give a positive finite number") from None
    if not (math.isfinite(f) and f > 0):
        raise ConfigError(f"{name}={v!r} must be a positive finite number")
    return f


def _solver(solver) -> diffrax.AbstractSolver:
    if solver is None:
        return diffrax.Tsit5()
    if isinstance(solver, str):
        if solver.lower() not in SOLVERS:
            raise ConfigError(f"solver={solver!r} is not one of {', '.join(SOLVERS)} (or a diffrax solver)")
        return SOLVERS[solver.lower()]()
    if not isinstance(solver, diffrax.AbstractSolver) or getattr(solver, "tableau", None) is None:
        raise ConfigError(f"solver {type(solver).__name__} is not an explicit diffrax Runge-Kutta solver (Tsit5, Dopri5)")
    return solver


def _evals_per_step(solver) -> int:
    tab = solver.tableau
    return tab.num_stages - (1 if tab.fsal else 0)


@eqx.filter_jit
def _chunk(score_fn, prior_log_prob, x0, idx, key, centre, log_smin, log_smax, *, trace, n_probes, solver,
           rtol, atol, max_steps):
    """Solve the augmented ODE for one chunk of points (vmapped); returns endpoints, the
    divergence integrals, the Gaussian and exact prior terms, status codes and step counts."""
    d = x0.shape[-1]
    exact = trace == "exact"
    sigma_max = jnp.exp(log_smax)

    def one(x, i):
        vs = probes(trace, d, n_probes, jax.random.fold_in(key, i))

        def field(t, y, args):
            x, _ = y
            sigma = jnp.exp(t)
            s, div_s = value_and_divergence(lambda z: score_fn(z, sigma), x, vs, exact=exact)
            s2 = sigma * sigma
            # In t = log sigma: dx/dt = sigma dx/dsigma = -sigma^2 s, and the log-density
            # changes at the rate -div(dx/dt) along the path, so int div dt is accumulated.
            return (-s2 * s, -s2 * div_s)

        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(field), solver, t0=log_smin, t1=log_smax, dt0=None,
            y0=(x, jnp.zeros((), x.dtype)),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            max_steps=max_steps, saveat=diffrax.SaveAt(t1=True), throw=False,
            adjoint=diffrax.ForwardMode(),
        )
        xt, delta = sol.ys[0][-1], sol.ys[1][-1]
        status = jnp.where(sol.result == diffrax.RESULTS.successful, 0,
                           jnp.where(sol.result == diffrax.RESULTS.max_steps_reached, 1, 2))
        status = jnp.where((status == 0) & ~(jnp.all(jnp.isfinite(xt)) & jnp.isfinite(delta)), 2, status)
        z = (xt - centre) / sigma_max
        gauss = -0.5 * jnp.sum(z * z) - d * (0.5 * math.log(2 * math.pi) + jnp.log(sigma_max))
        exact_prior = prior_log_prob(xt) if prior_log_prob is not None else jnp.zeros(())
        return xt, delta, gauss, exact_prior, status, sol.stats["num_steps"]

    return jax.vmap(one)(x0, idx)


def log_likelihood(
    score_fn: ScoreFn,
    points: Float[Array, "n d"] | np.ndarray,
    *,
    sigma_min: float,
    sigma_max: float,
    key: PRNGKeyArray | None = None,
    trace: str = "auto",
    n_probes: int = 8,
    prior_centre: Float[ArrayLike, " d"] | Sequence[float] | float = 0.0,
    prior_log_prob: Callable[[Float[Array, " d"]], Float[Array, ""]] | None = None,
    solver: diffrax.AbstractSolver | str | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_steps: int = 4096,
    chunk_size: int = 2048,
    progress: bool = False,
    on_failure: str = "raise",
) -> LikelihoodResult:
    """The log-density the probability-flow ODE of a score model assigns to each point.

    What is computed: the VE probability flow dx/dsigma = -sigma s(x, sigma) carries the
    model's density at sigma_min to its density at sigma_max. Each point x is moved from
    sigma_min up to sigma_max (solved in t = log sigma by an adaptive diffrax solver with
    a PID controller), and by the instantaneous change of variables

        log p_model,sigma_min(x) = log N(x(sigma_max); c, sigma_max^2 I)
                                   + int_{sigma_min}^{sigma_max} div_x(-sigma s(x(sigma), sigma)) dsigma.

    So `log_prob` is the log-density of the *model smoothed at sigma_min* (the density the
    probability-flow sampler stopped at sigma_min produces from its Gaussian prior), not of
    the data at sigma = 0. Two gaps separate it from the data's log p: the smoothing floor
    (p against p * N(0, sigma_min^2 I), see `kl_floor`) and the prior's mismatch at
    sigma_max (the true p_{sigma_max} is not exactly N(c, sigma_max^2 I)); pass the exact
    smoothed density as `prior_log_prob` to measure the latter (`prior_mismatch`).

    Images: an image density is uniform inside each pixel cell (SPEC section 3), a proper
    continuous density on R^2 ("dequantised" by construction), so log p_model and the
    exact log p are densities on the same space and their difference is a KL in nats; no
    extra dequantisation noise is needed.

    The divergence is exact (forward-mode products along the D basis vectors) for
    `trace="exact"`, and Hutchinson's unbiased estimator with `n_probes` Rademacher probes
    for `trace="hutchinson"`; the probes of a point are drawn once from `key` and the
    point's index and kept fixed through its solve. "auto": exact for D <= 16.

    Arguments:
        score_fn: `score_fn(x (D,), sigma) -> (D,)`, sigma the std of the perturbation.
        points: (N, D) finite points.
        sigma_min, sigma_max: the ends of the flow (data units), 0 < sigma_min < sigma_max.
        key: PRNG key for Hutchinson's probes (needed only for them; default key 0).
        trace: "auto", "exact" or "hutchinson".
        n_probes: probes per point for Hutchinson's estimator.
        prior_centre: the centre c of the Gaussian prior (scalar or (D,)), e.g. a run's
            data centre.
        prior_log_prob: optional exact log-density at sigma_max, `x (D,) -> scalar`.
        solver: "tsit5" (default), "dopri5" or a diffrax Runge-Kutta solver.
        rtol, atol: tolerances of the PID step-size controller (on x and the log-density).
        max_steps: step budget of one point's solve.
        chunk_size: points per compiled call (memory bound; results do not depend on it).
        progress: a tqdm bar over chunks on stderr.
        on_failure: "raise" (DivergenceError when any solve fails) or "nan" (those points'
            values are NaN, counted in `n_failed`; for maps, whose cells far from the data
            can be too stiff for the step budget).
    Returns:
        a `LikelihoodResult`.
    Raises:
        InputError for bad points, ConfigError for a bad option, DivergenceError when a
        solve fails (a NaN/inf score, or the step budget runs out) and `on_failure` is "raise".
    """
    start = time.perf_counter()
    if not callable(score_fn):
        raise ConfigError(f"score_fn must be a callable score_fn(x, sigma); got {type(score_fn).__name__}")
    if isinstance(points, jax.core.Tracer):
        raise InputError("points must be concrete (log_likelihood runs its own compiled chunks); call it outside jit")
    x = np.asarray(points)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise InputError(f"points has shape {x.shape}; give an (N, D) array with N >= 1")
    if x.dtype.kind not in "fiu":
        raise InputError(f"points has dtype {x.dtype}; give a float array of shape (N, D)")
    dtype = jnp.float64 if (jax.config.jax_enable_x64 and x.dtype == np.float64) else jnp.float32
    x = x.astype(dtype)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise InputError(f"points has {int(bad.sum())} of {len(x)} rows with NaN or inf; all must be finite")
    n, d = x.shape
    smin = _finite_positive(sigma_min, "sigma_min")
    smax = _finite_positive(sigma_max, "sigma_max")
    if not smin < smax:
        raise ConfigError(f"sigma_min={sigma_min} must be smaller than sigma_max={sigma_max}")
    rtol = _finite_positive(rtol, "rtol")
    atol = _finite_positive(atol, "atol")
    tr = resolve_trace(trace, d)
    k = int(n_probes)
    if tr == "hutchinson" and k < 1:
        raise ConfigError(f"n_probes={n_probes} must be at least 1")
    if int(max_steps) < 1 or int(chunk_size) < 1:
        raise ConfigError(f"max_steps={max_steps} and chunk_size={chunk_size} must be at least 1")
    centre = np.broadcast_to(np.asarray(prior_centre, np.float64), (d,)) if np.ndim(prior_centre) <= 1 else None
    if centre is None or not np.isfinite(centre).all():
        raise ConfigError(f"prior_centre must be a finite scalar or a vector of {d} entries")
    if prior_log_prob is not None and not callable(prior_log_prob):
        raise ConfigError("prior_log_prob must be a callable x (D,) -> log-density, or None")
    solv = _solver(solver)
    key = jax.random.key(0) if key is None else key
    if on_failure not in ("raise", "nan"):
        raise ConfigError(f"on_failure={on_failure!r} must be \"raise\" or \"nan\"")

    chunk = min(int(chunk_size), n)
    n_chunks = -(-n // chunk)
    opts = dict(trace=tr, n_probes=d if tr == "exact" else k, solver=solv, rtol=rtol, atol=atol,
                max_steps=int(max_steps))
    cen = jnp.asarray(centre, dtype)
    lo_t, hi_t = jnp.asarray(math.log(smin), dtype), jnp.asarray(math.log(smax), dtype)
    outs = {name: [] for name in ("xt", "delta", "gauss", "exact", "status", "steps")}

    from tqdm import tqdm

    bar = tqdm(total=n, disable=not progress, desc="likelihood", unit="pt", file=sys.stderr, leave=False,
               dynamic_ncols=True)
    try:
        for c in range(n_chunks):
            lo, hi = c * chunk, min((c + 1) * chunk, n)
            part = x[lo:hi]
            if hi - lo < chunk:  # pad to the compiled shape with copies of the last row
                part = np.concatenate([part, np.repeat(part[-1:], chunk - (hi - lo), 0)])
            idx = jnp.arange(lo, lo + chunk, dtype=jnp.int32)
            res = _chunk(score_fn, prior_log_prob, jnp.asarray(part), idx, key, cen, lo_t, hi_t, **opts)
            for name, a in zip(outs, res):
                outs[name].append(np.asarray(a)[: hi - lo])
            bar.update(hi - lo)
    finally:
        bar.close()
    o = {name: np.concatenate(v) for name, v in outs.items()}
    status = o["status"]
    failed = status != 0
    if failed.any() and on_failure == "raise":
        _raise_failure(score_fn, x, status, smin, smax, int(max_steps), rtol, atol)
    delta = np.where(failed, np.nan, o["delta"].astype(np.float64))
    gauss = np.where(failed, np.nan, o["gauss"].astype(np.float64))
    exact = None if prior_log_prob is None else o["exact"].astype(np.float64) + delta
    if exact is not None and not np.isfinite(exact[~failed]).all():
        raise DivergenceError("prior_log_prob returned NaN or inf at the end of some paths; "
                              "give a log-density that is finite on all of R^D (e.g. the target smoothed at sigma_max)")
    evals = _evals_per_step(solv) * o["steps"].astype(np.float64) + 3  # + FSAL start and dt0 selection
    return LikelihoodResult(
        log_prob=gauss + delta,
        log_prob_exact_prior=exact,
        prior_log_prob=gauss,
        divergence_integral=delta,
        endpoints=o["xt"].astype(np.float32),
        sigma_min=smin,
        sigma_max=smax,
        trace=tr,
        n_probes=opts["n_probes"],
        n_score_evals_per_point=float(np.mean(evals)),
        wall_time=time.perf_counter() - start,
        n_failed=int(failed.sum()),
    )


def _raise_failure(score_fn, x, status, smin, smax, max_steps, rtol, atol):
    """A DivergenceError naming how many solves failed and, where it can tell, why."""
    bad = np.flatnonzero(status != 0)
    first = int(bad[0])
    where = f"{len(bad)} of {len(status)} points (first: point {first})"
    pts = jnp.asarray(x[bad[:256]])
    finite = True
    for s in (smin, smax):
        vals = jax.vmap(lambda z, s=s: score_fn(z, jnp.asarray(s, pts.dtype)))(pts)
        finite &= bool(np.isfinite(np.asarray(vals)).all())
    if not finite:
        raise DivergenceError(
            f"the likelihood ODE failed for {where}: the score function returned NaN or inf at those points; "
            "check the score function (or the model's checkpoint)"
        )
    if (status[bad] == 1).all():
        raise DivergenceError(
            f"the likelihood ODE failed for {where}: the step budget max_steps={max_steps} ran out "
            f"between sigma={smin:.4g} and {smax:.4g}; raise max_steps or loosen rtol={rtol:g}/atol={atol:g}"
        )
    raise DivergenceError(
        f"the likelihood ODE failed for {where}: the solution became NaN or inf between sigma={smin:.4g} "
        f"and {smax:.4g}; check the score function there"
    )
