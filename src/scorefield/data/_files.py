"""Reading user files safely: regular files only (a FIFO or a device would block or never
end), the kind of a file told by its first bytes (so a message says what the file is),
.npy arrays read only after their header has been checked against the file's size and the
machine's free memory, and a content hash of data files for config.json."""

from __future__ import annotations

import hashlib
import os
import stat

import numpy as np

from .._errors import DataSpecError, InputError
from .._limits import available_memory, fmt_bytes

_KINDS = {stat.S_ISFIFO: "a FIFO (named pipe)", stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device",
          stat.S_ISSOCK: "a socket"}


def check_regular_file(path: str | os.PathLike, what: str, error: type[InputError] = DataSpecError) -> int:
    """Raise `error` (one line naming `what` and `path`) unless `path` is a readable regular
    file (symbolic links are followed); returns its size in bytes. FIFOs, devices and sockets
    are refused before they are opened, so reading never blocks or runs without end."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{what} '{path}' does not exist; give the path of an existing file") from None
    except OSError as e:
        raise error(f"{what} '{path}' cannot be accessed ({e.strerror or type(e).__name__}); give a readable file") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{what} '{path}' is a directory; give the path of a file")
    if not stat.S_ISREG(st.st_mode):
        kind = next((k for test, k in _KINDS.items() if test(st.st_mode)), "not a regular file")
        raise error(f"{what} '{path}' is {kind}, not a regular file; give the path of a regular file")
    if not os.access(path, os.R_OK):
        raise error(f"{what} '{path}' is not readable; check its permissions")
    return int(st.st_size)


def sniff(path: str | os.PathLike) -> str:
    """What a file holds, from its first bytes: 'empty', 'zeros' (every byte 0: a file whose
    data were never written), 'npy', 'npz' (a zip archive), 'pickle', 'gzip', 'json',
    'text' or 'other'."""
    with open(path, "rb") as f:
        head = f.read(4096)
        if not head:
            return "empty"
        if not head.strip(b"\0"):
            while chunk := f.read(1 << 20):
                if chunk.strip(b"\0"):
                    return "other"
            return "zeros"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "npz"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "other"
    return "json" if text.lstrip("\ufeff \t\r\n")[:1] in ("{", "[") else "text"


_NOT_NPY = {
    "empty": "is empty",
    "zeros": "is zero-filled (its data were never written)",
    "npz": "is a .npz archive, not a .npy array (load it and save one array with numpy.save)",
    "pickle": "holds pickled Python objects, which scorefield never loads",
    "gzip": "is gzip-compressed; decompress it first",
    "json": "is JSON text, not a .npy array",
    "text": "is a text file, not a .npy array (a .csv file needs the .csv extension)",
    "other": "is not a .npy array file",
}


def npy_header(path: str | os.PathLike, what: str, error: type[InputError] = DataSpecError):
    """(shape, dtype, data offset) of a .npy file, read from its header alone, or `error`
    saying what the file is instead."""
    check_regular_file(path, what, error)
    kind = sniff(path)
    if kind != "npy":
        raise error(f"{what} '{path}' {_NOT_NPY[kind]}; give a numeric array saved with numpy.save")
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = fmt.read_array_header_2_0(f)
            else:
                from numpy.lib import _format_impl

                shape, _, dtype = _format_impl._read_array_header(f, version)
            offset = f.tell()
    except (ValueError, OSError, EOFError, SyntaxError, ImportError, AttributeError) as e:
        raise error(f"{what} '{path}' has a damaged .npy header ({type(e).__name__}); give an array saved with numpy.save") from None
    return tuple(int(s) for s in shape), np.dtype(dtype), offset


def read_npy(path: str | os.PathLike, what: str, error: type[InputError] = DataSpecError, *,
             kinds: str = "biuf", copies: float = 3.0) -> np.ndarray:
    """A numeric .npy array, after checking its header: a numeric dtype (object arrays are
    never loaded), a file that holds all the bytes its header promises, and at most the free
    memory for `copies` copies of it as float64 (the casts and checks that follow).

    Raises `error` naming `what` and the file, for every other file.
    """
    shape, dtype, offset = npy_header(path, what, error)
    if dtype.hasobject:
        raise error(f"{what} '{path}' holds pickled Python objects (an object array), which scorefield never loads; "
                    "give a numeric array")
    if dtype.kind not in kinds:
        raise error(f"{what} '{path}' holds {dtype} data, not numbers; give a float array (integers also work)")
    count = int(np.prod(shape, dtype=object))
    need = count * dtype.itemsize
    have = os.path.getsize(path) - offset
    if have < need:
        raise error(f"{what} '{path}' is truncated: its header promises shape {shape} ({fmt_bytes(need)}) but it holds "
                    f"{fmt_bytes(max(have, 0))}")
    free = available_memory()
    row = int(np.prod(shape[1:], dtype=object)) * max(8, dtype.itemsize) if shape else max(8, dtype.itemsize)
    if copies * count * max(8, dtype.itemsize) > free:
        fits = int(free // (copies * max(row, 1)))
        raise error(f"{what} '{path}' holds shape {shape} ({fmt_bytes(need)}), more than the free memory "
                    f"({fmt_bytes(free)}) allows; at most {fits} rows fit")
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise error(f"{what} '{path}' is not a readable .npy array ({type(e).__name__}); give an array saved with numpy.save") from None
    return np.asarray(a)


def file_digest(path: str | os.PathLike) -> dict:
    """{'sha256', 'bytes'} of a file's content, read in chunks."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return {"sha256": h.hexdigest(), "bytes": n}
