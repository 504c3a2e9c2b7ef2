"""index.html of a demo: every figure with a caption, offline (inline CSS, relative links)."""

from __future__ import annotations

from html import escape

from ._settings import DemoSettings

_HEADINGS = {
    1: "1. A closed-form density and its score",
    2: "2. Langevin dynamics with the exact score",
    3: "3. An image as a distribution",
    5: "4–5. Training a score model",
    6: "6. The learned vector field",
    7: "7. Sampling with the learned score",
    8: "8. The learned density beside the target",
    9: "9. Images as data: MNIST digits in pixel space (optional, --images)",
    0: "Numbers",
}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.95em; color: #444; max-width: 60em; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ddd; padding: 0.3em 0.7em; text-align: left; }
code { background: #f4f4f4; padding: 0 0.2em; }
.lead { color: #555; }
"""


def _fmt(v, digits: int = 3) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _floor_text(floor: dict) -> str:
    """The floor's mean and, where metrics.json has it, the 95% range of one exact draw."""
    if "low" in floor and "high" in floor:
        return f"{floor['mean']:.4f} (one exact draw: {floor['low']:.4f} to {floor['high']:.4f}, 95%)"
    return f"{floor['mean']:.4f} ± {floor['stderr']:.4f} (s.e.)"


def _numbers(m: dict) -> str:
    floor = m["hist_tv_floor"]
    exact = m.get("exact_image_samples", {})
    train = m.get("train", {})
    samples = m.get("samples", {})
    lang = m.get("langevin", {})
    rows = [
        ("hist_tv of the learned samples", f"{m['hist_tv']:.4f} (N = {floor['n']:,})"),
        ("its floor: exact samples at the same N", _floor_text(floor)),
    ]
    if exact:
        rows.append((f"hist_tv of {exact['n']:,} exact samples (step 3)",
                     f"{exact['hist_tv']:.4f} (floor {exact['hist_tv_floor']['mean']:.4f})"))
    if lang:
        w = lang["mode_weights"]
        rows.append((f"mode weights of {lang['particles']} Langevin particles (step 2)",
                     f"{w[0]:.3f} / {w[1]:.3f} (exact 0.5 / 0.5)"))
    if train:
        rows.append(("training", f"preset {train['preset']}, {train['steps']:,} steps, "
                                 f"{_fmt(train['wall_s'], 1)} s, final loss {_fmt(train['final_loss'], 4)}"))
    if samples:
        rows.append(("sampling", f"{samples['sampler']}, {samples['levels']} levels, "
                                 f"{samples['score_evals_per_sample']:.0f} score evaluations per sample, "
                                 f"{samples['wall_s']:.1f} s"))
    images = m.get("images")
    if images:
        acc = images.get("mean_label_accuracy")
        rows.append(("digits (step 9)", f"{images['data']}, {images['steps']:,} steps in "
                                        f"{_fmt(images['train_wall_s'], 1)} s"
                     + ("" if acc is None else f"; {acc:.0%} read as the label asked for (chance 10%)")))
    wall = m.get("wall_s", {})
    if wall:
        parts = ", ".join(f"{k.replace('step', 'step ').replace('_', '–')}: {v:.1f} s"
                          for k, v in wall.items() if k != "total")
        rows.append(("wall time", f"{wall.get('total', float('nan')):.1f} s in all ({parts})"))
    body = "".join(f"<tr><th>{escape(a)}</th><td>{escape(b)}</td></tr>\n" for a, b in rows)
    return f"<table>\n{body}</table>\n"


def render(artifacts, metrics: dict, settings: DemoSettings) -> str:
    """The page as a string. Every `src`/`href` is an artifact's relative path."""
    order = [1, 2, 3, 5, 6, 7, 8, 9, 0]
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        "<title>scorefield demo</title>\n<style>", _CSS, "</style>\n</head>\n<body>\n",
        "<h1>scorefield: the walkthrough</h1>\n",
        "<p class=\"lead\">Score-based generative modelling in seven steps: the score of a density you "
        "know, Langevin dynamics that follow it, an image read as a density, a network that learns its "
        "score by denoising score matching, and many particles that sample from what it learned. "
        f"{'A quick run (<code>--fast</code>): small sizes, a short training. ' if metrics.get('fast') else ''}"
        "Written by <code>scorefield demo</code>; everything here is a relative link and works offline.</p>\n",
    ]
    for step in order:
        items = [a for a in artifacts if (a.step if a.step != 4 else 5) == step]
        if not items and step != 0:
            continue
        parts.append(f"<h2>{escape(_HEADINGS[step])}</h2>\n")
        if step == 0:
            parts.append(_numbers(metrics))
        for a in items:
            src = escape(a.file, quote=True)
            if a.kind in ("figure", "animation"):
                parts.append(
                    f"<figure>\n<img src=\"{src}\" alt=\"{escape(a.title, quote=True)}\" loading=\"lazy\">\n"
                    f"<figcaption><b>{escape(a.title)}.</b> {escape(a.caption)} "
                    f"<a href=\"{src}\">{src}</a></figcaption>\n</figure>\n"
                )
            else:
                parts.append(f"<p><a href=\"{src}\"><b>{escape(a.title)}</b></a> (<code>{src}</code>): "
                             f"{escape(a.caption)}</p>\n")
    parts.append("</body>\n</html>\n")
    return "".join(parts)
