"""How big the walkthrough is: the full demo, and the `--fast` one for tests."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .._errors import ConfigError


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the walkthrough (SPEC section 2) as `scorefield demo` runs it.

    Attributes:
        preset: training preset of steps 4-5 ("default": our recipe, as `scorefield train`).
        train_overrides: TrainConfig keys replacing the preset's (e.g. fewer steps).
        mixture_particles: particles of the many-particle Langevin run of step 2 (the
            reference ran one).
        langevin_steps: Langevin steps of step 2 (200 in the reference, step 0.01).
        path_frames: frames of the one-particle animation of step 2 (one per step when it
            is at least `langevin_steps` + 1).
        exact_samples: exact samples of the image drawn in step 3 (10,000 in the reference).
        samples: particles sampled from the learned score in step 7.
        animation_particles: particles drawn in the animation of step 7 (the first ones).
        anneal_frames: at most this many frames in the animation of step 7.
        floor_repeats: draws averaged for the hist_tv floor.
        density_resolution: cells along the longer side of the density map of step 8 (one
            probability-flow solve each; 28: one per pixel of the "5", about a minute on 2
            CPU cores for the default model, whose flow is stiff far from the digit).
        dpi: dots per inch of the figures.
        images: also run the optional step 9 (`scorefield demo --images`): a quick
            class-conditional U-Net on downsampled MNIST digits, its samples as a grid (one
            row per label) and the denoising of a batch as an animation.
        image_size: side of the digits of step 9 (a divisor of 28: 4, 7, 14 or 28).
        image_overrides: TrainConfig keys of step 9 replacing its quick recipe (tests
            give a smaller network here).
        image_per_label: samples drawn per label in step 9.
    """

    preset: str = "default"
    train_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    mixture_particles: int = 500
    langevin_steps: int = 200
    path_frames: int = 201
    exact_samples: int = 10_000
    samples: int = 10_000
    animation_particles: int = 2_000
    anneal_frames: int = 200
    floor_repeats: int = 64
    density_resolution: int = 28
    dpi: int = 100
    images: bool = False
    image_size: int = 7
    image_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    image_per_label: int = 10

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type == "int" and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ConfigError(f"demo setting {f.name}={v!r} must be a positive integer")

    @classmethod
    def full(cls, **changes) -> "DemoSettings":
        """The demo of `scorefield demo`: the default recipe and 10,000 samples."""
        return cls(**changes)

    @classmethod
    def fast(cls, **changes) -> "DemoSettings":
        """`scorefield demo --fast`: the "fast" preset and fewer particles; seconds, for tests."""
        base = dict(preset="fast", mixture_particles=300, path_frames=51, samples=2_000,
                    animation_particles=400, anneal_frames=51, floor_repeats=16, dpi=80,
                    density_resolution=16)
        return cls(**{**base, **changes})
