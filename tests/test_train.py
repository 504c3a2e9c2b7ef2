"""The training loop: resume equals uninterrupted, checkpoints, frozen arrays, divergence,
presets, sharding, and every objective recovering a known score."""

import json
import os
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _gauss import exact_score, gauss_data
from _subproc import xla_flags
from scorefield import CheckpointError, ConfigError, DivergenceError, InputError
from scorefield.nets import trainable
from scorefield.train import PRESETS, load_run, merge_preset, preset, resume, train

TINY = dict(data="gauss", width=32, depth=2, n_features=16, batch_size=64, steps_per_call=25,
            log_every=10, checkpoint_every=50)


def _leaves(model):
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))]


def _interrupt_at(k):
    def on_chunk(step, loss):
        if step >= k:
            raise KeyboardInterrupt

    return on_chunk


def test_resumed_run_equals_uninterrupted_run_bitwise(tmp_path):
    cfg = preset("fast", **TINY, steps=150)
    full = train(cfg, tmp_path / "full", dataset=gauss_data(), progress=False)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C after 75 steps: checkpoint, then re-raise
        train(cfg, tmp_path / "cut", dataset=gauss_data(), progress=False, on_chunk=_interrupt_at(75))
    assert load_run(tmp_path / "cut").step == 75
    done = resume(tmp_path / "cut", dataset=gauss_data(), progress=False)
    assert done.step == 150
    # Bitwise on CPU: every step's batch and noise come from fold_in(key, step), and compiled
    # calls break at the same steps (multiples of steps_per_call and checkpoint_every).
    for a, b in zip(_leaves(full.model) + _leaves(full.ema_model), _leaves(done.model) + _leaves(done.ema_model)):
        assert np.array_equal(a, b)
    steps = [r["step"] for r in done.metrics()]
    assert steps == list(range(0, 150, 10))
    full_losses = [r["loss"] for r in full.metrics()]
    assert [r["loss"] for r in done.metrics()][:7] == full_losses[:7]


def test_run_directory_layout_and_model_rebuilt_from_config_alone(tmp_path):
    run = train(preset("fast", **TINY, steps=50), tmp_path / "r", dataset=gauss_data(), progress=False)
    files = {p.name for p in (tmp_path / "r").iterdir()}
    assert {"config.json", "metrics.jsonl", "checkpoint.json", "checkpoint-000000050.npz"} <= files
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["format_version"] == 1 and cfg["dim"] == 2 and cfg["sigma_max"] != "auto"
    rec = [json.loads(l) for l in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert set(rec[0]) == {"step", "loss", "wall"}
    again = load_run(tmp_path / "r")
    x = jnp.array([0.4, 0.2])
    assert np.array_equal(np.asarray(run.score_fn()(x, 0.1)), np.asarray(again.score_fn()(x, 0.1)))
    # no pickle anywhere: the array file is a zip of plain .npy members
    with np.load(tmp_path / "r" / "checkpoint-000000050.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_existing_run_is_not_overwritten(tmp_path):
    train(preset("fast", **TINY, steps=25), tmp_path / "r", dataset=gauss_data(), progress=False)
    with pytest.raises(InputError, match="already holds a run"):
        train(preset("fast", **TINY, steps=25), tmp_path / "r", dataset=gauss_data(), progress=False)
    with pytest.raises(InputError, match="not a scorefield run"):
        resume(tmp_path / "missing", dataset=gauss_data(), progress=False)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "r"
    train(preset("fast", **TINY, steps=50), path, dataset=gauss_data(), progress=False)
    return path


@pytest.mark.parametrize("damage", ["truncate", "tamper", "pointer", "version", "missing"])
def test_damaged_checkpoint_is_a_clear_error(tmp_path, small_run, damage):
    import shutil

    shutil.copytree(small_run, tmp_path / "r")
    run = load_run(tmp_path / "r")
    arr = tmp_path / "r" / "checkpoint-000000050.npz"
    ptr = tmp_path / "r" / "checkpoint.json"
    if damage == "truncate":
        arr.write_bytes(arr.read_bytes()[: arr.stat().st_size // 2])
    elif damage == "tamper":  # a valid file whose first model array changed by one ulp
        with np.load(arr) as z:
            arrays = {k: z[k] for k in z.files}
        first = sorted(k for k in arrays if k.startswith("model/"))[0]
        arrays[first] = np.nextafter(arrays[first], np.inf).astype(arrays[first].dtype)
        with open(arr, "wb") as f:
            np.savez(f, **arrays)
    elif damage == "pointer":
        ptr.write_text("{not json")
    elif damage == "version":
        meta = json.loads(ptr.read_text())
        meta["format_version"] = 99
        ptr.write_text(json.dumps(meta))
    else:
        arr.unlink()
    with pytest.raises(CheckpointError) as e:
        load_run(run.path)
    assert str(run.path) in str(e.value) and "\n" not in str(e.value)


def test_loading_a_run_traces_its_network_instead_of_initialising_it(small_run, monkeypatch):
    # an eager random initialisation (values then thrown away for the checkpoint's) compiled
    # op by op and took 30 s of a 50 s `scorefield sample --run` on the default preset
    from scorefield.train import _run

    real, keys_seen = _run.build_model, []
    monkeypatch.setattr(_run, "build_model", lambda config, *, key: keys_seen.append(key) or real(config, key=key))
    run = load_run(small_run)
    assert len(keys_seen) == 1 and isinstance(keys_seen[0], jax.core.Tracer)
    with np.load(small_run / "checkpoint-000000050.npz") as z:
        ema = [z[k] for k in sorted(k for k in z.files if k.startswith("ema/"))]
    params = eqx.filter(run.ema_model, trainable(run.ema_model))
    assert ema and all(np.array_equal(a, np.asarray(b))
                       for a, b in zip(ema, jax.tree_util.tree_leaves(params), strict=True))


def test_frozen_arrays_never_change(tmp_path):
    for net in ("reference", "sigma"):
        extra = dict(levels="all", n_levels=5) if net == "reference" else {}
        cfg = preset("fast", **TINY, steps=50, net=net, **extra)
        run = train(cfg, tmp_path / net, dataset=gauss_data(), progress=False)
        from scorefield.train import build_model
        from scorefield.train._build import keys as k

        init = build_model(run.config, key=k(run.config)["model"])
        names = type(init).frozen
        assert names
        for n in names:
            assert np.array_equal(np.asarray(getattr(init, n)), np.asarray(getattr(run.model, n)))
        # and the trainable part did move
        spec = trainable(init)
        moved = [not np.array_equal(a, b) for a, b, t in zip(
            jax.tree_util.tree_leaves(eqx.filter(init, eqx.is_array)),
            jax.tree_util.tree_leaves(eqx.filter(run.model, eqx.is_array)),
            jax.tree_util.tree_leaves(spec)) if t]
        assert all(moved)


class NaNAfter(eqx.Module):
    """Gaussian data that turn to NaN once a step's key draws u < p."""

    spec: str = eqx.field(static=True, default="nan")
    dim: int = eqx.field(static=True, default=2)
    target = None

    def sample(self, key, n):
        ku, kx = jax.random.split(key)
        x = jax.random.normal(kx, (n, 2))
        return jnp.where(jax.random.uniform(ku) < 0.02, jnp.nan, x)


def test_divergence_stops_with_step_and_keeps_last_good_checkpoint(tmp_path):
    cfg = preset("fast", **{**TINY, "checkpoint_every": 1000}, steps=2000).replace(
        sigma_max=1.0, sigma_min=0.01, centre=[0.0, 0.0])
    with pytest.raises(DivergenceError) as e:
        train(cfg, tmp_path / "r", dataset=NaNAfter(), progress=False)
    step = e.value.step
    assert step is not None and 0 < step < 2000 and f"step {step}" in str(e.value)
    run = load_run(tmp_path / "r")  # the good state before the failing call
    assert run.step <= step and run.step == (step // 25) * 25
    assert all(np.all(np.isfinite(a)) for a in _leaves(run.model))


def test_seed_preset_is_the_reference_recipe():
    p = PRESETS["seed"]
    assert p["net"] == "reference" and p["n_features"] == 256 and p["width"] == 128 and p["depth"] == 3
    assert p["objective"] == "dsm" and p["levels"] == "all"
    assert (p["n_levels"], p["sigma_min"], p["sigma_max"]) == (30, 1e-4, 1.0)
    assert (p["batch_size"], p["lr"], p["steps"], p["lr_schedule"]) == (128, 1e-3, 50_000, "constant")
    assert p["grad_clip"] == 0.0 and p["ema_decay"] == 0.0 and p["warmup_steps"] == 0
    assert p["centre"] == [0.5, 0.5]
    from scorefield.train import build_model, build_optimizer

    cfg = preset("seed", dim=2)
    model = build_model(cfg, key=jax.random.PRNGKey(0))
    assert model.b_cos.shape == model.b_sin.shape == (256, 2)
    assert not np.array_equal(np.asarray(model.b_cos), np.asarray(model.b_sin))
    assert len(model.mlp.layers) == 4 and model.mlp.width_size == 128
    t = jnp.linspace(-30, 30, 1001)
    np.testing.assert_allclose(model.mlp.activation(t), jax.nn.softplus(t), rtol=1e-6, atol=1e-7)  # softplus
    assert model.scale.shape == (30, 512)
    # Adam at a constant 1e-3: the first update of a unit gradient is -1e-3 per coordinate
    opt = build_optimizer(cfg)
    p0 = {"w": jnp.zeros(3)}
    upd, _ = opt.update({"w": jnp.ones(3)}, opt.init(p0), p0)
    np.testing.assert_allclose(np.asarray(upd["w"]), -1e-3, rtol=1e-4)


def test_sigma_ratios_set_the_training_and_sampling_ends():
    # sigma_min "auto" = sigma_min_ratio * sigma_max; the recipe's sampler stops at
    # max(sigma_min, sample_sigma_min_ratio * sigma_max); a config.json written before the
    # two keys existed reads as 5e-3 and 1% (what "auto" meant then).
    from scorefield.data import load
    from scorefield.train import TrainConfig, build_sampler, resolve

    data = load("mnist")
    old = resolve(TrainConfig.from_dict({**PRESETS["fast"], "data": "mnist"}), data)
    smax = float(old.sigma_max)
    assert old.sigma_min == pytest.approx(5e-3 * smax, rel=1e-12)
    assert float(build_sampler(old)[0].sigmas[-1]) == pytest.approx(0.01 * smax, rel=1e-6)
    new = resolve(preset("fast", data="mnist", sigma_min_ratio=2e-3, sample_sigma_min_ratio=2.5e-3), data)
    assert new.sigma_max == smax and new.sigma_min == pytest.approx(2e-3 * smax, rel=1e-12)
    assert float(build_sampler(new)[0].sigmas[-1]) == pytest.approx(2.5e-3 * smax, rel=1e-6)
    # a sampling ratio below the training one stops at the training sigma_min
    low = resolve(preset("fast", data="mnist", sigma_min_ratio=4e-3, sample_sigma_min_ratio=1e-3), data)
    assert float(build_sampler(low)[0].sigmas[-1]) == pytest.approx(4e-3 * smax, rel=1e-6)
    for bad in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(ConfigError, match="sample_sigma_min_ratio"):
            preset("fast", sample_sigma_min_ratio=bad)
        with pytest.raises(ConfigError, match="sigma_min_ratio"):
            preset("fast", sigma_min_ratio=bad)


def test_grid_align_puts_the_finest_grid_points_on_the_pixel_edges():
    # grid_align: the finest grid's step is 1/(28 k) for a whole k and its points fall on
    # the pixel edges (multiples of 1/28), the cube still covers the automatic one, the
    # centre moves by less than one step; a toy set (no pixels) is left as it was.
    from scorefield.data import load
    from scorefield.train import resolve

    for spec in ("mnist",):
        data = load(spec)
        auto = resolve(preset("fast", data=spec, grid_resolutions=[8, 16, 128]), data)
        al = resolve(preset("fast", data=spec, grid_resolutions=[8, 16, 128], grid_align=True), data)
        h = 2 * al.half_width / 127
        k = 1 / (28 * h)
        assert k == pytest.approx(round(k), abs=1e-9) and round(k) >= 1
        lo = np.asarray(al.centre) - al.half_width
        assert np.allclose(lo / h, np.round(lo / h), atol=1e-6)  # points at lo + j h, lo a multiple of h
        assert al.half_width >= auto.half_width and al.half_width < auto.half_width * 128 / 127 * (1 + 1 / round(k))
        assert np.all(np.abs(np.asarray(al.centre) - np.asarray(auto.centre)) <= h / 2 + 1e-12)
    toy = load("toy:ncsn-mixture")
    a, b = (resolve(preset("fast", data="toy:ncsn-mixture", grid_align=g), toy) for g in (False, True))
    assert (a.centre, a.half_width) == (b.centre, b.half_width)
    with pytest.raises(ConfigError, match="grid_align"):
        preset("fast", grid_align=1)


# Each objective recovers the exact score of a 2-D Gaussian. For DSM the minimiser is the
# score of the data smoothed by sigma, -(C + sigma^2 I)^{-1}(x - m); SSM and exact SM learn
# the score at their fixed sigma. Tolerance: the relative L2 error over points within two
# standard deviations, 0.15: a 2-layer net fit by 500 Adam steps on 128-sample batches
# reaches 0.04-0.10 here (1,500 steps: 0.02-0.08); a wrong target (say a sign error, or
# sigma instead of sigma^2) gives errors of order 1. SSM and exact SM, judged at sigma_min
# only, train 300 steps: 0.069 and 0.069 (500 steps: 0.070, 0.051); DSM keeps 500 (0.098,
# 0.039, 0.041 at 0.05, 0.2, 0.5; 300 steps reach 0.106 at 0.5, too near the bound).
@pytest.mark.parametrize("objective, steps", [("dsm", 500), ("ssm", 300), ("exact", 300)])
def test_objective_recovers_gaussian_score(tmp_path, objective, steps):
    cfg = preset("fast", data="gauss", objective=objective, width=64, depth=2, n_features=16,
                 feature_scale=1.0, steps=steps, batch_size=128, lr=3e-3, ema_decay=0.99,
                 sigma_max=1.0, sigma_min=0.05, steps_per_call=steps // 2, checkpoint_every=steps,
                 ssm_projections=4)
    run = train(cfg, tmp_path / objective, dataset=gauss_data(), progress=False)
    key = jax.random.PRNGKey(7)
    x = np.asarray(gauss_data().sample(key, 400))
    sigmas = [0.05] if objective != "dsm" else [0.05, 0.2, 0.5]
    for s in sigmas:
        got = np.asarray(jax.vmap(run.score_fn(), (0, None))(jnp.asarray(x), s))
        want = exact_score(x, s)
        rel = np.linalg.norm(got - want) / np.linalg.norm(want)
        assert rel < 0.15, (objective, s, rel)


def test_sharded_batch_gives_the_same_losses(tmp_path, small_run):
    """Two virtual CPU devices shard the batch; the losses match one device. The one-device
    run is this module's `small_run` (the same config, trained in this process, which has
    one device unless XLA_FLAGS says otherwise): one child process instead of two."""
    script = f"""
import sys, json, jax
sys.path.insert(0, {str(Path(__file__).parent)!r})
from _gauss import gauss_data
from scorefield.train import preset, train
run = train(preset("fast", **{TINY!r}, steps=50), sys.argv[1], dataset=gauss_data(), progress=False)
print(json.dumps({{"devices": jax.local_device_count(), "losses": [r["loss"] for r in run.metrics()]}}))
"""
    out = {}
    if jax.local_device_count() == 1:
        out[1] = {"devices": 1, "losses": [r["loss"] for r in load_run(small_run).metrics()]}
    for n in (1, 2):
        if n in out:
            continue
        env = dict(os.environ, XLA_FLAGS=xla_flags(f"--xla_force_host_platform_device_count={n}"), JAX_PLATFORMS="cpu")
        res = subprocess.run([sys.executable, "-c", script, str(tmp_path / f"d{n}")], env=env,
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        out[n] = json.loads(res.stdout.strip().splitlines()[-1])
    assert out[1]["devices"] == 1 and out[2]["devices"] == 2
    assert len(out[1]["losses"]) == 5  # steps 0, 10, ..., 40 of 50
    np.testing.assert_allclose(out[2]["losses"], out[1]["losses"], rtol=1e-4)


# ---------------------------------------------------------------- plug-ins and injection

from scorefield import ComponentRequiredError  # noqa: E402
from scorefield._registry import Option  # noqa: E402
from scorefield.nets import NETS, ScoreNet  # noqa: E402


class PlainMLP(ScoreNet):
    """A network defined outside the package: a SiLU MLP on (x, log sigma), output / sigma."""

    mlp: eqx.nn.MLP

    def __init__(self, dim, width, *, key, out_scale=0.1):
        mlp = eqx.nn.MLP(dim + 1, dim, width, 2, activation=jax.nn.silu, key=key)
        self.mlp = eqx.tree_at(lambda m: m.layers[-1].weight, mlp, mlp.layers[-1].weight * out_scale)

    def __call__(self, x, sigma):
        return self.mlp(jnp.concatenate([x, jnp.log(sigma)[None]])) / sigma


class PluginNet(PlainMLP):
    name = "plugin-mlp"
    options = (Option("width", int, 32, "hidden width", low=1),
               Option("out_scale", float, 0.1, "scale of the last layer at initialisation", low=0, low_open=True))

    @classmethod
    def from_options(cls, context, *, width, out_scale):
        return cls(context.dim, width, key=context.key, out_scale=out_scale)


def test_a_network_registered_outside_the_package_trains_through_the_cli(tmp_path, capsys):
    from _tiny import tiny_toml
    from scorefield.cli import main

    NETS.register(PluginNet)
    try:
        toml = tmp_path / "c.toml"
        toml.write_text(tiny_toml(10) + 'net = "plugin-mlp"\n[net_options]\nout_scale = 0.5\n')
        argv = ["train", "--data", "toy:ncsn-mixture", "--out", str(tmp_path / "r"), "--config", str(toml), "--quiet"]
        assert main(argv) == 0
        run = load_run(tmp_path / "r")  # rebuilt from config.json through the registry
        assert isinstance(run.model, PluginNet) and run.step == 10 and run.config.net_options == {"out_scale": 0.5}
        assert run.config.injected == []
        bad = tmp_path / "bad.toml"
        bad.write_text(tiny_toml(10) + 'net = "plugin-mlp"\n[net_options]\nout_scale = -1.0\n')
        assert main(argv[:4] + [str(tmp_path / "r2"), "--config", str(bad), "--quiet"]) == 2
        assert "out_scale=-1.0 must be a positive finite number" in capsys.readouterr().err
    finally:
        NETS.unregister("plugin-mlp")
    with pytest.raises(ConfigError, match="valid choices|is not one of"):
        load_run(tmp_path / "r")  # unregistered again: config.json names an unknown network


def test_an_unregistered_model_instance_trains_and_must_be_given_to_load(tmp_path):
    cfg = preset("fast", **TINY, steps=50)
    model = PlainMLP(2, 16, key=jax.random.PRNGKey(3))
    run = train(cfg, tmp_path / "r", model=model, dataset=gauss_data(), progress=False)
    assert run.step == 50 and run.config.injected == ["model"]
    assert not all(np.array_equal(a, b) for a, b in zip(_leaves(model), _leaves(run.model)))
    with pytest.raises(ComponentRequiredError, match=r"load_run\(.*model=\.\.\.\)") as e:
        load_run(tmp_path / "r")
    assert "\n" not in str(e.value)
    with pytest.raises(ComponentRequiredError, match="model"):
        resume(tmp_path / "r", steps=60, dataset=gauss_data(), progress=False)
    again = load_run(tmp_path / "r", model=PlainMLP(2, 16, key=jax.random.PRNGKey(99)))
    assert all(np.array_equal(a, b) for a, b in zip(_leaves(run.model), _leaves(again.model), strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(_leaves(run.ema_model), _leaves(again.ema_model), strict=True))
    # an instance of another shape does not fit the checkpoint
    with pytest.raises(CheckpointError):
        load_run(tmp_path / "r", model=PlainMLP(2, 8, key=jax.random.PRNGKey(0)))


def test_injected_objective_and_optimizer_are_used(tmp_path):
    import optax

    from scorefield.losses import DenoisingScoreMatching

    cfg = preset("fast", **TINY, steps=25, sigma_max=1.0, sigma_min=0.05)
    calls = []

    def objective(model, x, *, key):
        calls.append(x.shape)  # traced once per compilation
        return DenoisingScoreMatching(jnp.asarray([1.0, 0.05]), levels="random")(model, x, key=key)

    run = train(cfg, tmp_path / "r", objective=objective, optimizer=optax.sgd(0.0), dataset=gauss_data(),
                progress=False)
    assert calls and calls[0] == (64, 2)
    assert run.config.injected == ["objective", "optimizer"]
    fresh = load_run(tmp_path / "r")  # the model is registered: no instance needed to load
    from scorefield.train import build_model
    from scorefield.train._build import keys as k

    init = build_model(run.config, key=k(run.config)["model"])
    # a learning rate of 0: the parameters never moved
    assert all(np.array_equal(a, b) for a, b in zip(_leaves(init), _leaves(fresh.model), strict=True))


def test_a_networks_data_loss_is_added_to_the_objectives(tmp_path):
    """pixel_table_nll: the histogram's negative log-likelihood joins the loss; with an
    objective of 0 the logged loss is that alone, from the uniform start's log(table area)
    down towards the entropy of the "5" (about -1.75 nats), and the histogram follows."""
    from scorefield.data import load
    from scorefield.likelihood import entropy

    cfg = preset("fast", data="mnist", pixel_table=1, pixel_table_nll=1.0, steps=150, steps_per_call=50,
                 log_every=50, lr=3e-2, warmup_steps=0, lr_schedule="constant")

    def objective(model, x, *, key):
        return 0.0 * jnp.sum(x)

    run = train(cfg, tmp_path / "r", objective=objective, progress=False)
    losses = [r["loss"] for r in run.metrics()]
    net = run.model
    area = np.prod(net.table.shape[:2]) * net.pixel_cell**2
    assert losses[0] == pytest.approx(np.log(area), abs=0.05)
    target = load("mnist").target
    # the cross-entropy of the fitted histogram, at least the entropy, and close to it
    assert entropy(target).value - 0.01 < losses[-1] < entropy(target).value + 0.05


# ---------------------------------------------------------------- resume as a user types it


def test_resume_with_the_runs_own_command(tmp_path, capsys):
    from _tiny import tiny_toml
    from scorefield.cli import main

    toml = tmp_path / "c.toml"
    toml.write_text(tiny_toml(20))
    run = tmp_path / "r"
    cmd = ["train", "--data", "toy:ncsn-mixture", "--out", str(run), "--config", str(toml), "--quiet"]
    assert main(cmd + ["--steps", "10"]) == 0
    # the same command, --resume added (and --steps to extend): continues
    assert main(cmd + ["--steps", "20", "--resume"]) == 0
    assert load_run(run).step == 20
    capsys.readouterr()
    # an option that differs from the run's: one line naming it, the run's value and the given one
    assert main(cmd + ["--resume", "--seed", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "seed: the run has 0, given 5" in err and "--" not in err.split("error:")[1].split(";")[0]
    # a total below the steps done is refused
    assert main(["train", "--out", str(run), "--resume", "--steps", "10", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--steps 10 is below the 20 steps" in err
    with pytest.raises(InputError, match=r"steps=10 is below the 20 steps"):
        resume(run, steps=10, progress=False)
    # the Python API speaks its own argument names
    with pytest.raises(InputError, match=r"resume=True"):
        train(preset("fast", **TINY, steps=25), run, dataset=gauss_data(), progress=False)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_run_files_follow_the_umask(tmp_path, umask):
    """Every file of a run directory gets 0666 & ~umask (a shared run is readable by others
    under the usual 022), never mkstemp's 0600 (issue 15, item 12)."""
    old = os.umask(umask)
    try:
        train(preset("fast", **TINY, steps=50), tmp_path / "r", dataset=gauss_data(), progress=False)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "r").iterdir() if p.is_file()}
    assert {"config.json", "checkpoint.json", "metrics.jsonl"} <= set(modes)
    assert all(m == 0o666 & ~umask for m in modes.values()), modes


def test_progress_says_compiling_then_rates_only_compiled_calls(monkeypatch):
    """Issue 15 item 6: the bar says "compiling" until the first call returns, and its rate
    (hence the time left) comes from the later calls only, not from the compilation."""
    import io
    import time

    from scorefield.train._rundir import Progress

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = Progress(total=1000, initial=0, enabled=True)
    assert "compiling" in str(bar.bar)  # the line the terminal shows
    time.sleep(0.6)  # the first call: compilation, then 100 steps
    bar.update(100, 1.0)
    assert bar.bar.n == 100 and "compiling" not in str(bar.bar)
    time.sleep(0.1)  # a compiled call of 100 steps
    bar.update(100, 0.9)
    rate = bar.bar.format_dict["n"] - bar.bar.format_dict["initial"]
    rate /= bar.bar.format_dict["elapsed"]
    bar.close()
    # ~1000 steps/s from the compiled call; counting the compilation would give < 300
    assert 400 < rate < 1100, rate


def test_levels_all_over_a_preset_drops_its_per_sample_sigma_terms_but_not_the_users():
    # the default preset's antithetic pairs and second-order term need one sigma per sample;
    # a user who chooses levels = "all" over it gets a valid config, unless they set them too
    c = preset("default", data="mnist", levels="all")
    assert c.levels == "all" and c.antithetic is False and c.second_order == 0.0
    assert preset("default", data="mnist").antithetic is True
    assert merge_preset({"antithetic": True, "levels": "continuous"}, {"levels": "all"}) == {"levels": "all"}
    from scorefield.data import load
    from scorefield.train import resolve
    from scorefield.train._build import build_objective

    data = load("mnist")
    build_objective(resolve(preset("default", data="mnist", levels="all"), data))
    with pytest.raises(ConfigError, match="antithetic"):  # set by the user: refused, as before
        build_objective(resolve(preset("default", data="mnist", levels="all", antithetic=True), data))
