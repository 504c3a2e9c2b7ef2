"""The data-spec grammar shared by the CLI, config files and the library (SPEC section 4).

    mnist                        the reference image: MNIST training image 0, a "5"
    mnist:label=L,index=K        the K-th bundled digit of label L (0<=L<=9, 0<=K<500)
    mnist:label=L                same as index=0
    mnist:index=K                bundled row K (0<=K<5000) = label K // 500, index K % 500
    mnist-idx:PATH[,index=K]     image K (default 0) of a standard IDX image file (.gz ok)
    image:PATH[,invert][,centres]
    toy:NAME
    points:PATH                  .npy or .csv, N x D
    mnist-digits[:label=L][,size=S]
                                 the 5,000 bundled digits as points in R^(S*S) (pixel space),
                                 with their labels; label=L keeps one digit; size=S in
                                 4, 7, 14, 28 averages them down to S x S (default 28)
    mnist-digits-idx:IMAGES[,labels=LABELS][,size=S]
                                 every image of an IDX image file, with its IDX labels file
    image-folder:DIR             every .png in DIR (one size) as a point in R^(C*H*W)

PATH is everything after the first ':' up to the first unescaped ','; it may contain ':'.
Inside PATH write a literal ',' as '\\,' and a literal backslash as '\\\\' (a backslash
before any other character is kept as is). Options after PATH are separated by ',' and may
come in any order. `str(DataSpec)` is canonical (defaults left out, options in a fixed
order, aliases resolved) and parses back to an equal DataSpec.
"""

from __future__ import annotations

import dataclasses
import re

from .._errors import DataSpecError

MNIST_PER_LABEL = 500
MNIST_ROWS = 10 * MNIST_PER_LABEL

TOY_NAMES = (
    "two-moons",
    "swiss-roll",
    "8gaussians",
    "checkerboard",
    "pinwheel",
    "two-spirals",
    "rings",
    "ncsn-mixture",
)
TOY_ALIASES = {
    "moons": "two-moons",
    "2moons": "two-moons",
    "swissroll": "swiss-roll",
    "8-gaussians": "8gaussians",
    "eight-gaussians": "8gaussians",
    "2spirals": "two-spirals",
    "spirals": "two-spirals",
    "circles": "rings",
    "concentric-rings": "rings",
    "ncsn": "ncsn-mixture",
}

FORMS = (
    "mnist, mnist:label=L,index=K, mnist-idx:PATH[,index=K], "
    "image:PATH[,invert][,centres], toy:NAME, points:PATH, mnist-digits[:label=L][,size=S], "
    "mnist-digits-idx:IMAGES[,labels=LABELS][,size=S], image-folder:DIR"
)
PIXEL_KINDS = ("mnist-digits", "mnist-digits-idx", "image-folder")


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """A parsed data spec. `kind` is one of 'mnist', 'mnist-idx', 'image', 'toy',
    'points'; the other fields apply to some kinds only and are None/False otherwise."""

    kind: str
    path: str | None = None
    name: str | None = None
    label: int | None = None
    index: int | None = None
    invert: bool = False
    centres: bool = False
    labels_path: str | None = None
    size: int | None = None

    @property
    def pixels(self) -> bool:
        """Whether each image is one point in R^(C*H*W) (pixel space)."""
        return self.kind in PIXEL_KINDS

    def __str__(self) -> str:
        if self.kind in PIXEL_KINDS:
            opts = []
            if self.label is not None:
                opts.append(f"label={self.label}")
            if self.labels_path is not None:
                opts.append(f"labels={escape_path(self.labels_path)}")
            if self.size is not None:
                opts.append(f"size={self.size}")
            head = self.kind if self.path is None else f"{self.kind}:{escape_path(self.path)}"
            if self.path is None:
                return head + (":" + ",".join(opts) if opts else "")
            return ",".join([head, *opts])
        if self.kind == "mnist":
            if self.label is None:
                return "mnist"
            return f"mnist:label={self.label},index={self.index}"
        if self.kind == "toy":
            return f"toy:{self.name}"
        opts = []
        if self.kind == "mnist-idx" and self.index:
            opts.append(f"index={self.index}")
        if self.kind == "image":
            if self.invert:
                opts.append("invert")
            if self.centres:
                opts.append("centres")
        return ",".join([f"{self.kind}:{escape_path(self.path)}", *opts])


def _q(text: str) -> str:
    """Quote user text for a one-line message (repr only when it has odd characters)."""
    return f"'{text}'" if text.isprintable() else repr(text)


def escape_path(path: str) -> str:
    """Escape a path for a spec: '\\' -> '\\\\', ',' -> '\\,'."""
    return path.replace("\\", "\\\\").replace(",", "\\,")


def _split(rest: str) -> list[str]:
    """Split on unescaped commas, undoing the escapes."""
    parts, cur, i = [], [], 0
    while i < len(rest):
        ch = rest[i]
        if ch == "\\" and i + 1 < len(rest) and rest[i + 1] in ",\\":
            cur.append(rest[i + 1])
            i += 2
            continue
        if ch == ",":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def _int(spec: str, key: str, value: str, lo: int, hi: int | None) -> int:
    v = value.strip()
    if not re.fullmatch(r"-?[0-9]+", v):
        raise DataSpecError(f"data spec {_q(spec)}: {key}={value!r} is not an integer")
    n = int(v)
    if n < lo or (hi is not None and n > hi):
        valid = f"{lo} <= {key} <= {hi}" if hi is not None else f"{key} >= {lo}"
        raise DataSpecError(f"data spec {_q(spec)}: {key}={n} is out of range; valid: {valid}")
    return n


def _keyvals(spec: str, opts: list[str], allowed: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for opt in opts:
        key, eq, value = opt.partition("=")
        key = key.strip()
        if not eq or key not in allowed:
            raise DataSpecError(
                f"data spec {_q(spec)}: unknown option {opt!r}; valid options here: "
                + ", ".join(f"{k}=N" for k in allowed)
            )
        if key in out:
            raise DataSpecError(f"data spec {_q(spec)}: option {key} is given twice")
        out[key] = value
    return out


def _parse_mnist(spec: str, rest: str | None) -> DataSpec:
    if rest is None:
        return DataSpec("mnist")
    kv = _keyvals(spec, [o for o in rest.split(",")], ("label", "index"))
    if "label" in kv:
        label = _int(spec, "label", kv["label"], 0, 9)
        index = _int(spec, "index", kv["index"], 0, MNIST_PER_LABEL - 1) if "index" in kv else 0
    elif "index" in kv:
        row = _int(spec, "index", kv["index"], 0, MNIST_ROWS - 1)
        label, index = divmod(row, MNIST_PER_LABEL)
    else:
        raise DataSpecError(f"data spec {_q(spec)}: expected mnist:label=L,index=K (or plain mnist)")
    return DataSpec("mnist", label=label, index=index)


def _parse_pixels(spec: str, kind: str, rest: str | None) -> DataSpec:
    from ._pixels import MNIST_SIZES

    if kind == "mnist-digits":
        opts = [o for o in rest.split(",")] if rest is not None else []
        path = None
    else:
        parts = _split(rest) if rest is not None else [""]
        path, opts = parts[0], parts[1:]
        if not path:
            what = "a folder" if kind == "image-folder" else "an IDX image file"
            raise DataSpecError(f"data spec {_q(spec)}: {kind} needs {what}, as in {kind}:PATH")
    allowed = {"mnist-digits": ("label", "size"), "mnist-digits-idx": ("labels", "size"), "image-folder": ()}[kind]
    out: dict[str, str] = {}
    for opt in opts:
        key, eq, value = opt.partition("=")
        key = key.strip()
        if not eq or key not in allowed:
            valid = ", ".join(f"{k}={'LABELS' if k == 'labels' else k[0].upper()}" for k in allowed) or "none"
            raise DataSpecError(f"data spec {_q(spec)}: unknown option {opt!r}; valid options here: {valid}")
        if key in out:
            raise DataSpecError(f"data spec {_q(spec)}: option {key} is given twice")
        out[key] = value
    label = _int(spec, "label", out["label"], 0, 9) if "label" in out else None
    size = None
    if "size" in out:
        size = _int(spec, "size", out["size"], 1, None)
        if kind == "mnist-digits" and size not in MNIST_SIZES:
            raise DataSpecError(f"data spec {_q(spec)}: size={size} is not one of {', '.join(map(str, MNIST_SIZES))} "
                                "(the bundled 28 x 28 digits are averaged down in square blocks)")
        size = None if kind == "mnist-digits" and size == 28 else size
    labels_path = out.get("labels")
    if labels_path is not None and not labels_path:
        raise DataSpecError(f"data spec {_q(spec)}: labels= needs the path of an IDX labels file")
    return DataSpec(kind, path=path, label=label, labels_path=labels_path, size=size)


def parse_spec(spec: str | DataSpec) -> DataSpec:
    """Parse a data spec string (grammar in the module docstring).

    Raises:
        DataSpecError naming the spec and the valid forms, for any malformed spec, an
        unknown kind, toy name or option, or a label/index out of range.
    """
    if isinstance(spec, DataSpec):
        return spec
    if not isinstance(spec, str):
        raise DataSpecError(f"data spec must be a string like 'mnist' or 'toy:two-moons'; got {type(spec).__name__}")
    kind, colon, rest = spec.partition(":")
    kind = kind.strip()
    if kind == "mnist":
        return _parse_mnist(spec, rest if colon else None)
    if kind == "toy":
        name = rest.strip().lower()
        name = TOY_ALIASES.get(name, name)
        if not colon or name not in TOY_NAMES:
            raise DataSpecError(
                f"data spec {_q(spec)}: unknown toy set {rest.strip()!r}; valid: "
                + ", ".join(f"toy:{n}" for n in TOY_NAMES)
            )
        return DataSpec("toy", name=name)
    if kind in PIXEL_KINDS:
        return _parse_pixels(spec, kind, rest if colon else None)
    if kind in ("image", "points", "mnist-idx"):
        parts = _split(rest) if colon else [""]
        path, opts = parts[0], parts[1:]
        if not path:
            raise DataSpecError(f"data spec {_q(spec)}: {kind} needs a file path, as in {kind}:PATH")
        if kind == "points":
            if opts:
                raise DataSpecError(f"data spec {_q(spec)}: points:PATH takes no options (escape a ',' in the path as '\\,')")
            return DataSpec("points", path=path)
        if kind == "mnist-idx":
            kv = _keyvals(spec, opts, ("index",))
            index = _int(spec, "index", kv["index"], 0, None) if "index" in kv else 0
            return DataSpec("mnist-idx", path=path, index=index)
        flags = {"invert": False, "centres": False}
        for opt in opts:
            o = opt.strip().lower()
            o = "centres" if o == "centers" else o
            if o not in flags:
                raise DataSpecError(
                    f"data spec {_q(spec)}: unknown image option {opt!r}; valid: invert, centres "
                    "(escape a ',' in the path as '\\,')"
                )
            flags[o] = True
        return DataSpec("image", path=path, **flags)
    hint = f" (did you mean image:{spec} or points:{spec}?)" if not colon and "." in spec and spec.isprintable() else ""
    raise DataSpecError(f"unknown data spec {_q(spec)}; valid forms: {FORMS}{hint}")
