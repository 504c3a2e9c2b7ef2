"""A finished or interrupted run, rebuilt from its directory alone."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
from jaxtyping import Array, Float

from .._errors import ComponentRequiredError, InputError
from . import _checkpoint as ckpt
from ._build import build_model, sigmas
from ._config import TrainConfig, read_config_json
from ._state import from_arrays


@dataclass(frozen=True)
class Run:
    """A run directory loaded: its resolved config, the model, the EMA model and the step.

    Use :meth:`score_fn` to sample: the EMA weights by default.
    """

    path: Path
    config: TrainConfig
    model: eqx.Module
    ema_model: eqx.Module
    step: int
    checkpoint: dict[str, Any]

    @classmethod
    def load(cls, run_dir: str | Path, *, model: eqx.Module | None = None) -> "Run":
        """See :func:`load_run`."""
        path = Path(run_dir)
        if not path.is_dir():
            raise InputError(f"run directory {path} is not a directory; give a run directory written by "
                             "scorefield.train.train or 'scorefield train'")
        config = read_config_json(path / "config.json")
        if model is None and "model" in config.injected:
            raise ComponentRequiredError(
                f"the run in {path} was trained with a model given as an instance, which config.json cannot rebuild; "
                f"give it again: load_run({str(path)!r}, model=...)")
        meta, arrays = ckpt.load(path)
        # the skeleton's array values are replaced by the checkpoint's: build only its
        # structure (shapes and dtypes), not an eager random initialisation that compiles
        # op by op (tens of seconds on a loaded CPU for the default grid network)
        skeleton = model if model is not None else eqx.filter_eval_shape(
            lambda k: build_model(config, key=k), jax.random.PRNGKey(0))
        state, static = from_arrays(skeleton, arrays)
        model = eqx.combine(state.params, static)
        ema = eqx.combine(state.ema, static)
        return cls(path, config, model, ema, int(state.step), meta)

    @property
    def sigmas(self) -> Float[Array, " L"]:
        """The noise grid of the run, descending (data units)."""
        return sigmas(self.config)

    @property
    def n_classes(self) -> int:
        """The labels the run's model is conditioned on (0: unconditional)."""
        return int(self.config.n_classes or 0) if getattr(self.ema_model, "conditional", False) else 0

    @property
    def image_shape(self) -> tuple[int, ...] | None:
        """(C, H, W) for a run on image data in pixel space, else None."""
        return None if self.config.image_shape is None else tuple(self.config.image_shape)

    def score_fn(self, ema: bool = True, *, label: int | None = None, guidance: float = 1.0):
        """``score(x, sigma)`` on one example, with the EMA weights unless `ema` is False.

        The result is an Equinox module (`scorefield.nets.GuidedScore`) holding the weights,
        label and guidance weight as arrays, not constants: a compiled sampler serves every
        label and weight, and the persistent compilation cache (`scorefield.cli._cache`)
        serves every run of the same recipe (another seed or image of the same shape), which
        a closure over the weights would not (it compiles them in as constants; BENCHMARKS.md
        section 6).

        Arguments:
            label: for a class-conditional run, the label to sample (0..n_classes-1); None
                gives the unconditional score.
            guidance: classifier-free guidance weight w: s_u + w (s_label - s_u); 0 is the
                unconditional score, 1 the conditional one (the default).
        Raises:
            InputError for a label on an unconditional run or out of range.
        """
        from ..nets import guided_score

        model = self.ema_model if ema else self.model
        if label is None:
            return guided_score(model, None)
        self.check_label(label, "label=")
        return guided_score(model, int(label), guidance)

    def check_label(self, label, name: str = "label=") -> None:
        """InputError (one line, naming `name`) unless `label` is a valid label of this run."""
        if self.n_classes == 0:
            raise InputError(f"{name}{label}: the run in {self.path} is unconditional (trained without labels); "
                             "leave the label out, or train on labelled image data such as mnist-digits")
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < self.n_classes:
            raise InputError(f"{name}{label} is out of range for the run in {self.path}; valid labels are "
                             f"0..{self.n_classes - 1}")

    def sampler(self, **overrides):
        """(sampler, init): the sampler of the run's recipe, options overridable."""
        from ._sampling import build_sampler

        return build_sampler(self.config, **overrides)

    def dataset(self):
        """The run's training data, loaded from its spec."""
        from ..data import load

        return load(self.config.data)

    def metrics(self) -> list[dict[str, Any]]:
        """The records of metrics.jsonl (step, loss, wall seconds); lines that are not such
        a JSON object (a damaged or hand-edited log) are skipped."""
        p = self.path / "metrics.jsonl"
        if not p.exists():
            return []
        out = []
        for line in p.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("step"), int) and isinstance(rec.get("loss"), (int, float)):
                out.append(rec)
        return out


def load_run(run_dir: str | Path, *, model: eqx.Module | None = None) -> Run:
    """Load a run directory written by :func:`scorefield.train.train`.

    Arguments:
        run_dir: the run directory.
        model: for a run trained with a model given as an instance (config.json's
            ``injected`` lists "model"): a model of the same architecture, whose arrays are
            replaced by the checkpoint's. Runs of registered networks need none.
    Raises:
        ComponentRequiredError when the run needs `model` and none is given;
        CheckpointError when the checkpoint does not fit the model.
    """
    return Run.load(run_dir, model=model)
