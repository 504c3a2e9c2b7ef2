"""Training: configuration and presets, the loop, EMA, checkpoints and runs."""

from ._build import build_model, build_objective, build_optimizer, resolve, sigmas
from ._config import PRESETS, TrainConfig, load_toml, merge_preset, preset
from ._loop import resume, train
from ._run import Run, load_run
from ._sampling import build_sampler, image_plan, sample_by_label, sampler_context
from ._state import TrainState

__all__ = [
    "TrainConfig", "PRESETS", "preset", "merge_preset", "load_toml",
    "resolve", "sigmas", "build_model", "build_objective", "build_optimizer",
    "TrainState", "build_sampler", "sampler_context", "image_plan", "sample_by_label", "train", "resume", "Run", "load_run",
]
