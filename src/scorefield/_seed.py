"""One rule for seeds everywhere (CLI options, TOML and config.json, the library): a seed is
an integer in [0, 2^63), and distinct seeds give distinct keys.

JAX without 64-bit mode keeps only the low 32 bits of a seed, so ``jax.random.key(0)`` and
``jax.random.key(2**32)`` are the same key. :func:`seed_key` puts the high 32 bits into the
key data as 64-bit JAX would, so seeds below 2^32 keep their keys (and every run made with
them its samples) and larger seeds get keys of their own."""

from __future__ import annotations

import numbers

from ._errors import InputError
from ._limits import SEED_LIMIT

SEED_RULE = "an integer in [0, 2^63)"


def check_seed(value, what: str = "seed", error: type[InputError] = InputError) -> int:
    """`value` as a seed, or `error` (exit 2) naming `what` and the valid range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise error(f"{what}={value!r} is not a valid seed; give {SEED_RULE}")
    v = int(value)
    if not 0 <= v < SEED_LIMIT:
        raise error(f"{what}={v} is out of range; a seed is {SEED_RULE}")
    return v


def parse_seed(text: str, what: str = "seed") -> int:
    """A seed from command-line text (decimal), or InputError naming `what`."""
    t = text.strip()
    try:
        v = int(t, 10)
    except ValueError:
        raise InputError(f"{what} {text!r} is not an integer; give {SEED_RULE}") from None
    return check_seed(v, what)


def seed_key(seed: int, *, raw: bool = False):
    """The PRNG key of `seed` (checked): a typed key (``jax.random.key``), or with `raw` a
    legacy uint32 key (``jax.random.PRNGKey``). Equal to JAX's own key for seeds below
    2^32; above, the high bits are kept, so distinct seeds never share a key."""
    import jax
    import jax.numpy as jnp

    seed = check_seed(seed, "seed")
    hi, lo = seed >> 32, seed & 0xFFFFFFFF
    key = jax.random.PRNGKey(lo) if raw else jax.random.key(lo)
    if hi == 0:
        return key
    data = jax.random.key_data(key) if not raw else key
    if data.shape == (2,):  # threefry: key data (high, low), as 64-bit JAX makes it
        new = jnp.asarray([hi, lo], dtype=jnp.uint32)
        return new if raw else jax.random.wrap_key_data(new)
    return jax.random.fold_in(key, hi)  # another PRNG implementation: a key of its own
