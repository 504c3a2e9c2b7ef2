"""A sampler defined here, outside the package, registers and is driven through the CLI entry
point with its own option flag: what the registry promises a user's own sampler."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import scorefield.samplers as S
from scorefield._registry import Option
from scorefield.cli import main


class Redraw(S.AbstractChainSampler):
    """Each step forgets the position and draws N(centre, spread^2 I) afresh (no model use
    but one counted evaluation, so the summary line can be checked)."""

    sigma: float
    spread: float
    n_steps: int
    centre: float
    name = "redraw"
    label = "redraw"
    options = (
        Option("spread", float, 1.0, "standard deviation of each draw", low=0.0, low_open=True),
        Option("steps", int, 3, "draws per particle", low=1),
    )

    @classmethod
    def from_options(cls, context, *, spread, steps):
        return cls(sigma=context.sigma_min, spread=spread, n_steps=steps, centre=0.0)

    def init(self, fn, x, key):
        return x, S.info(0).n_evals

    def step(self, fn, state, level, key):
        fn(state, self.sigma)  # one evaluation, as a real sampler would make
        return self.centre + self.spread * jax.random.normal(key, state.shape), S.info(1)

    def position(self, state):
        return state


@pytest.fixture
def registered():
    S.SAMPLERS.register(Redraw)
    yield
    S.SAMPLERS.unregister("redraw")


def test_plugin_sampler_runs_from_the_command_line_with_its_option(registered, tmp_path, capsys):
    f = tmp_path / "x.npy"
    code = main(["sample", "--exact", "toy:ncsn-mixture", "--n", "4000", "--out", str(f), "--sampler", "redraw",
                 "--spread", "2.5", "--steps", "4", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    x = np.load(f)
    assert x.shape == (4000, 2) and x.dtype == np.float32
    se = 2.5 * np.sqrt(2 / 4000)  # standard error of a sample std, about 0.056
    assert np.all(np.abs(x.std(0) - 2.5) < 4 * se), x.std(0)
    assert "with redraw" in out and "4.0 score evaluations per sample" in out


def test_plugin_sampler_options_are_checked_and_listed(registered, tmp_path, capsys):
    f = tmp_path / "x.npy"
    code = main(["sample", "--exact", "toy:ncsn-mixture", "--n", "4", "--out", str(f), "--sampler", "redraw",
                 "--eps", "0.1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "--eps is not an option of sampler 'redraw'" in err and "--spread" in err
    with pytest.raises(SystemExit) as e:
        main(["sample", "--exact", "toy:ncsn-mixture", "--n", "4", "--out", str(f), "--sampler", "redraw",
              "--spread", "-1"])
    assert e.value.code == 2
    assert "--spread" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    assert "redraw: standard deviation of each draw" in capsys.readouterr().out
    assert not f.exists()


def test_unregistered_names_are_refused_with_the_choices(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["sample", "--exact", "toy:ncsn-mixture", "--n", "4", "--out", str(tmp_path / "x.npy"), "--sampler", "redraw"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'redraw'" in err and "langevin" in err
