"""`scorefield demo --images` (issue 13): the optional step 9 writes its grid and animation
and index.html shows them; here with a tiny network (the step's own recipe trains for about
a minute, and `make demo` leaves it off)."""

import json

import numpy as np
from PIL import Image

from scorefield.demo import DemoSettings, _html, _steps
from scorefield.demo._run import prepare_out

# the plumbing, not the recipe: a small unconditional network compiles in seconds (the
# U-Net's training program alone takes about 30 s of CPU to compile; its conditioning and
# guided sampling are tested in test_unet.py)
TINY = {"net": "sigma", "width": 16, "depth": 1, "n_features": 8, "net_options": {}, "steps": 4, "steps_per_call": 4,
        "log_every": 4, "checkpoint_every": 4, "warmup_steps": 1, "batch_size": 16, "sampler": {"name": "heun", "nfe": 3}}


def test_step9_writes_a_grid_of_every_label_and_a_denoising_animation_shown_in_index_html(tmp_path):
    out = prepare_out(tmp_path / "demo")
    settings = DemoSettings.fast(images=True, image_size=4, image_per_label=2, image_overrides=TINY)
    from scorefield._seed import seed_key

    ctx = _steps.Context(out, settings, seed_key(0), False)
    old = out / _steps.IMAGE_RUN_DIR
    old.mkdir()
    (old / "config.json").write_text("{}")  # a previous demo's run: replaced, not refused
    run = _steps.step9_images(ctx)
    assert run.n_classes == 0 and run.step == 4 and (out / _steps.IMAGE_RUN_DIR / "config.json").is_file()
    files = {a.file: a for a in ctx.artifacts}
    assert set(files) == {"09_digits.png", "09_denoising.gif"}
    grid = Image.open(out / "09_digits.png")
    assert grid.size[0] > 100 and grid.size[1] > 100
    gif = Image.open(out / "09_denoising.gif")
    gif.seek(gif.n_frames - 1)
    frame = np.asarray(gif.convert("RGB"))
    # the two samples side by side: 4x4 digits enlarged 14x (56 // 4) with one pixel of padding
    assert frame.shape[1] == (2 * 5 + 1) * 14 and gif.n_frames >= 3  # start, the Heun steps, the samples
    m = ctx.metrics["images"]
    assert m["steps"] == 4 and m["label_accuracy"] is None and m["per_label"] == 2
    html = _html.render(ctx.artifacts, {"hist_tv": 0.1, "hist_tv_floor": {"mean": 0.1, "stderr": 0.01, "n": 10},
                                        **ctx.metrics}, settings)
    assert "9. Images as data" in html and 'src="09_digits.png"' in html and 'src="09_denoising.gif"' in html
    assert "digits (step 9)" in html
    assert _steps.IMAGE_RECIPE["steps"] == 400 and not DemoSettings.full().images  # off by default
    json.dumps(ctx.metrics)  # metrics.json can hold it


def test_cli_demo_images_is_off_by_default_and_on_with_the_flag(monkeypatch, tmp_path):
    import scorefield.demo as demo
    from scorefield._errors import InputError
    from scorefield.cli import main

    seen = []

    def fake(out, settings, **kw):  # the plumbing only: the flag reaches the settings
        seen.append(settings.images)
        raise InputError("stopped here")

    monkeypatch.setattr(demo, "run_demo", fake)
    assert main(["demo", "--out", str(tmp_path / "a"), "--fast", "--quiet"]) == 2
    assert main(["demo", "--out", str(tmp_path / "b"), "--quiet", "--images"]) == 2
    assert seen == [False, True]
