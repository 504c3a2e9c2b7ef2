"""`scorefield train` offers every registered network's and objective's options as flags
(from their option tables, like the sampler flags of `scorefield sample`): a flag reaches the
built component, is the config key of the same name, is checked against the chosen
component with one line naming it, and a network registered here gets its flags at once.
Training itself is replaced by a stand-in that records the config (the loop is tested in
test_train.py), so each test takes a second."""

from __future__ import annotations

from types import SimpleNamespace

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import scorefield.train as T
from scorefield._registry import Option
from scorefield.cli import main
from scorefield.data import load
from scorefield.nets import NETS, ScoreNet
from scorefield.train import build_model, preset
from scorefield.train._build import keys


class FlagNet(ScoreNet):
    """A network defined outside the package: x -> scale * tanh(W x) / sigma, width hidden units."""

    w_in: jax.Array
    w_out: jax.Array
    out_scale: float = eqx.field(static=True)
    name = "flag-mlp"
    options = (Option("width", int, 16, "hidden width", low=1, high=64),
               Option("out_scale", float, 0.1, "scale of the output", low=0, low_open=True))

    @classmethod
    def from_options(cls, context, *, width, out_scale):
        k1, k2 = jax.random.split(context.key)
        return cls(jax.random.normal(k1, (width, context.dim)), jax.random.normal(k2, (context.dim, width)), out_scale)

    def __call__(self, x, sigma):
        return self.out_scale * (self.w_out @ jnp.tanh(self.w_in @ x)) / sigma


@pytest.fixture
def plugin():
    NETS.register(FlagNet)
    yield
    NETS.unregister("flag-mlp")


@pytest.fixture
def trained(monkeypatch):
    """Replace the training loop by a recorder of the config it is given."""
    seen = []

    def fake_train(config, out, **kw):
        seen.append(config)
        return SimpleNamespace(metrics=lambda: [], checkpoint={}, step=0, path=out)

    monkeypatch.setattr(T, "train", fake_train)
    return seen


def _train(tmp_path, *flags):
    return main(["train", "--data", "toy:ncsn-mixture", "--out", str(tmp_path / "r"), "--preset", "fast",
                 "--steps", "10", "--quiet", *flags])


def test_plugin_network_flags_reach_the_built_network_as_the_python_keys_do(plugin, trained, tmp_path, capsys):
    _train(tmp_path, "--net", "flag-mlp", "--width", "8", "--out-scale", "0.25")
    (config,) = trained
    assert config.net == "flag-mlp" and config.width == 8 and config.net_options == {"out_scale": 0.25}
    model = build_model(config, key=keys(config)["model"])
    assert isinstance(model, FlagNet) and model.w_in.shape == (8, 2) and model.out_scale == 0.25
    # the Python API: the same names, the same network
    same = preset("fast", data="toy:ncsn-mixture", steps=10, net="flag-mlp", width=8, net_options={"out_scale": 0.25})
    same = T.resolve(same, load(same.data))
    assert same == config
    twin = build_model(same, key=keys(same)["model"])
    assert np.array_equal(model.w_in, twin.w_in) and np.array_equal(model.w_out, twin.w_out)
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "flag-mlp: scale of the output" in capsys.readouterr().out


def test_plugin_network_flags_are_checked_in_one_line(plugin, trained, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:  # out of every network's range: a usage error
        _train(tmp_path, "--net", "flag-mlp", "--out-scale", "-1")
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--out-scale: -1 must be a positive finite number" in err
    # valid for the first network that declares --width, not for this one's high=64
    assert _train(tmp_path, "--net", "flag-mlp", "--width", "100") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--width 100 must be a positive integer <= 64 (network 'flag-mlp')" in err
    # an option of another network only
    assert _train(tmp_path, "--net", "flag-mlp", "--grid-features", "3") == 2
    err = capsys.readouterr().err.strip()
    assert "--grid-features is not an option of network 'flag-mlp'" in err and "--out-scale" in err
    assert not trained


def test_builtin_network_and_objective_flags_override_the_config_file(trained, tmp_path, capsys):
    toml = tmp_path / "c.toml"
    toml.write_text('net = "grid"\ngrid_features = 5\nwidth = 12\n')
    _train(tmp_path, "--config", str(toml), "--grid-features", "3", "--grid-resolutions", "4,6", "--levels", "random")
    (config,) = trained
    assert (config.grid_features, config.grid_resolutions, config.width, config.levels) == (3, [4, 6], 12, "random")
    from scorefield.train._config import component_options  # what build_model passes to GridNet

    assert component_options(config, "net") == dict(grid_resolutions=[4, 6], grid_features=3, width=12, depth=2,
                                                       pixel_edges=False, grid_blend="linear", pixel_table=0,
                                                       pixel_table_nll=0.0)


def test_flags_of_another_component_are_refused_naming_the_chosen_one(trained, tmp_path, capsys):
    # net "auto" on 2-D data is the grid network, which has no random features
    assert _train(tmp_path, "--feature-scale", "3") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--feature-scale is not an option of network 'grid'" in err
    assert _train(tmp_path, "--objective", "ssm", "--levels", "all") == 2
    assert "--levels is not an option of objective 'ssm'" in capsys.readouterr().err
    assert _train(tmp_path, "--objective", "ssm", "--ssm-projections", "2") == 0
    assert trained[-1].objective == "ssm" and trained[-1].ssm_projections == 2
