"""A fitted model and the plays it knows, in one self-checking file.

Layout: the 16-byte magic, the header length (8 bytes, little endian), a
JSON header (format version, model name and hyper-parameters, where each
array lies), the arrays back to back (64-byte aligned), and last the
SHA-256 of everything before it. Loading checks the magic, the version,
the length and the checksum before it trusts a byte.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import struct
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from .errors import ModelFileError

if TYPE_CHECKING:
    from .data import Interactions
    from .models import Recommender

MAGIC = b"jukebox_fast\0mdl"
FORMAT_VERSION = 1
_ALIGN = 64
_DIGEST = 32


def is_model_file(path):
    """True when ``path`` starts with the model file magic (False for anything unreadable)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def encode_model(model, interactions=None):
    """The bytes of a model file (a uint8 array) for a fitted model and, optionally, the plays it was fit on.

    Parameters
    ----------
    model : Recommender
        Fitted; its hyper-parameters are ``get_params()`` and its learnt
        state every ndarray attribute whose name ends in ``_``.
    interactions : Interactions, optional
        The plays and id maps; the command line's ``recommend`` needs them
        to leave out played songs and to print ids.
    """
    from .models import model_name

    if not model.is_fitted():
        raise RuntimeError(f"{type(model).__name__} is not fitted yet: call fit first")
    arrays = {f"model.{name}": value for name, value in sorted(vars(model).items()) if name.endswith("_") and isinstance(value, np.ndarray)}
    if interactions is not None:
        ui = interactions.user_items
        arrays.update({
            "plays.indptr": np.asarray(ui.indptr, np.int64),
            "plays.indices": np.asarray(ui.indices, np.int32),
            "plays.data": np.asarray(ui.data, np.int64),
            "users.data": interactions.users.data, "users.offsets": interactions.users.offsets,
            "songs.data": interactions.songs.data, "songs.offsets": interactions.songs.offsets,
        })
    layout, offset = [], 0
    for name, value in arrays.items():
        value = np.ascontiguousarray(value)
        arrays[name] = value
        layout.append({"name": name, "dtype": value.dtype.str, "shape": list(value.shape), "offset": offset})
        offset += -(-value.nbytes // _ALIGN) * _ALIGN
    from . import __version__

    header = json.dumps({
        "format_version": FORMAT_VERSION,
        "written_by": f"jukebox_fast {__version__}",
        "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": model_name(model),
        "hyper_parameters": model.get_params(),
        "shape": None if interactions is None else list(interactions.user_items.shape),
        "arrays": layout,
        "payload_bytes": offset,
    }).encode("utf-8")
    header += b" " * (-(len(MAGIC) + 8 + len(header)) % _ALIGN)
    start = len(MAGIC) + 8 + len(header)
    out = np.zeros(start + offset + _DIGEST, np.uint8)
    out[: len(MAGIC)] = np.frombuffer(MAGIC, np.uint8)
    out[len(MAGIC) : len(MAGIC) + 8] = np.frombuffer(struct.pack("<Q", len(header)), np.uint8)
    out[len(MAGIC) + 8 : start] = np.frombuffer(header, np.uint8)
    for entry in layout:
        value = arrays[entry["name"]]
        out[start + entry["offset"] : start + entry["offset"] + value.nbytes] = value.reshape(-1).view(np.uint8)
    out[-_DIGEST:] = np.frombuffer(hashlib.sha256(out[:-_DIGEST]).digest(), np.uint8)
    return out


def save_model(path: str | os.PathLike, model: Recommender, interactions: Interactions | None = None) -> None:
    """Write a fitted model, and its plays when given, to ``path`` atomically (see ``encode_model``)."""
    from .io import write_output

    write_output(path, memoryview(encode_model(model, interactions)))


def model_info(path: str | os.PathLike) -> dict:
    """What a model file holds, from its header alone (the arrays are neither read nor checked).

    Keys: ``path``, ``file_bytes``, ``format_version``, ``written_by``,
    ``written_at`` (UTC, ISO 8601; None for files written before it was
    kept), ``model``, ``parameters``, ``songs``, ``users`` and ``plays``
    (None for a file saved without its plays).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(len(MAGIC) + 8)
            if head[: len(MAGIC)] != MAGIC or len(head) < len(MAGIC) + 8:
                raise ModelFileError(path, "not a jukebox_fast model file (train one with `python -m jukebox_fast train`)")
            (header_bytes,) = struct.unpack("<Q", head[len(MAGIC) :])
            header = json.loads(f.read(header_bytes).decode("utf-8"))
            size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise ModelFileError(path, f"cannot read: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError):
        raise ModelFileError(path, "the model file's header is damaged (truncated or corrupt)") from None
    arrays = {entry["name"]: entry["shape"] for entry in header.get("arrays", [])}
    n_songs = arrays.get("model.item_popularity_", [None])[0]
    return {
        "path": os.fspath(path),
        "file_bytes": size,
        "format_version": header.get("format_version"),
        "written_by": header.get("written_by"),
        "written_at": header.get("written_at"),
        "model": header.get("model"),
        "parameters": header.get("hyper_parameters"),
        "songs": n_songs,
        "users": None if header.get("shape") is None else header["shape"][0],
        "plays": arrays.get("plays.indices", [None])[0],
    }


def load_model(path: str | os.PathLike) -> tuple[Recommender, Interactions | None]:
    """Read a model file written by ``save_model``.

    Returns
    -------
    model : Recommender
        Fitted, of the class and with the hyper-parameters it was saved with.
    interactions : Interactions or None
        The plays it was fit on, with their id maps; None when the file was saved without them.

    Raises
    ------
    ModelFileError
        The file is not a jukebox_fast model, is truncated or corrupt, or
        was written in a newer format.
    """
    from .data import Interactions, factorize
    from .io import read_bytes
    from .models import MODELS

    _, raw, _ = read_bytes(path)
    if raw[: len(MAGIC)] != MAGIC:
        raise ModelFileError(path, "not a jukebox_fast model file (train one with `python -m jukebox_fast train`)")
    if len(raw) < len(MAGIC) + 8 + _DIGEST:
        raise ModelFileError(path, f"the model file is truncated ({len(raw)} bytes)")
    (header_bytes,) = struct.unpack("<Q", raw[len(MAGIC) : len(MAGIC) + 8])
    start = len(MAGIC) + 8 + header_bytes
    try:
        header = json.loads(raw[len(MAGIC) + 8 : start].decode("utf-8"))
        version = header["format_version"]
        expected = start + header["payload_bytes"] + _DIGEST
    except (ValueError, KeyError, TypeError):
        raise ModelFileError(path, "the model file's header is damaged (truncated or corrupt)") from None
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            path, f"written in model format {version} by {header.get('written_by', '?')}; this jukebox_fast reads "
            f"format {FORMAT_VERSION}: upgrade jukebox_fast or train the model again"
        )
    if len(raw) != expected:
        raise ModelFileError(path, f"the model file is truncated or padded: {len(raw):,} bytes, expected {expected:,}")
    if hashlib.sha256(memoryview(raw)[:-_DIGEST]).digest() != raw[-_DIGEST:]:
        raise ModelFileError(path, "the model file is corrupt (its SHA-256 checksum does not match); train it again")
    if header["model"] not in MODELS:
        raise ModelFileError(
            path, f"holds a {header['model']!r} model, which this jukebox_fast does not have (it has {', '.join(sorted(MODELS))})"
        )

    arrays = {}
    for entry in header["arrays"]:
        dtype = np.dtype(entry["dtype"])
        count = int(np.prod(entry["shape"], dtype=np.int64))
        # Views of the file's bytes, which nothing else holds: writable, and aligned
        # unless the buffer itself is not (then a copy). No second copy of B.
        array = np.frombuffer(raw, dtype, count, start + entry["offset"]).reshape(entry["shape"])
        arrays[entry["name"]] = array if array.flags.aligned else array.copy()

    try:
        model = MODELS[header["model"]](**header["hyper_parameters"])
    except TypeError:
        raise ModelFileError(
            path, f"its {header['model']} parameters ({', '.join(header['hyper_parameters'])}) are not this "
            "jukebox_fast's; train the model again"
        ) from None
    for name, value in arrays.items():
        if name.startswith("model."):
            setattr(model, name[len("model."):], value)

    def id_map(prefix):
        data, offsets = arrays[f"{prefix}.data"], arrays[f"{prefix}.offsets"]
        from .kernels.parse import token_keys

        starts, lengths = offsets[:-1].copy(), np.diff(offsets)
        hashes = np.empty(lengths.size, np.uint64)
        token_keys(data, starts, lengths, hashes)
        _, ids = factorize(data, starts, lengths, hashes)
        return ids

    if header["shape"] is None:
        return model, None
    user_items = sp.csr_array(
        (arrays["plays.data"], arrays["plays.indices"], arrays["plays.indptr"]), shape=tuple(header["shape"])
    )
    user_items.indptr, user_items.indices = arrays["plays.indptr"], arrays["plays.indices"]
    return model, Interactions(user_items, id_map("users"), id_map("songs"))
