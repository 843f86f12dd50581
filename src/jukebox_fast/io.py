"""Files in and out: listening logs and user lists to arrays, recommendations to text.

Reading runs the parse kernels over the file's raw bytes in chunks cut at
line boundaries, one per thread. Every error names the file and the line.
Writing goes to a temporary file beside the target and is renamed into
place, so a failure never leaves half an output behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
import tempfile
import warnings

import numpy as np
import scipy.sparse as sp

from . import _parallel as parallel
from .data import IdMap, Interactions, factorize
from .errors import InputFormatError, JukeboxError, JukeboxWarning, repeats_message

_BOM = b"\xef\xbb\xbf"
LISTEN_FORMAT = "'<user_id> <song_id> <count>'"
USER_FORMAT = "one user id per line"
_BLANKS = re.compile(rb"[ \t\r]+")  # what the parse kernel takes for a field separator
_MAX_COUNT = 2**63 - 1
_CHUNK_BYTES = 1 << 20  # below this a second thread costs more than it saves


def read_bytes(path):
    """The file's bytes (a UTF-8 byte-order mark dropped) as a uint8 array, the raw bytearray, and the mark's length.

    ``-`` reads standard input.
    """
    if os.fspath(path) == "-":
        raw = bytearray(sys.stdin.buffer.read())
    else:
        raw, n, more = _read_file(path, bytearray)
        del raw[n:]
        raw += more
    start = 3 if raw.startswith(_BOM) else 0
    return np.frombuffer(raw, np.uint8)[start:], raw, start


def _text_array(path):
    """``read_bytes`` for the parser: the bytes (a byte-order mark dropped) as a writable uint8 array.

    No bytearray: NumPy backs a large array with huge pages where the
    system allows, so it is filled with fewer page faults and looked up at
    random (by the factorization) with fewer TLB misses.
    """
    if os.fspath(path) == "-":
        return read_bytes(path)[0]
    array, n, more = _read_file(path, lambda size: np.empty(size, np.uint8))
    if n < array.size or more:
        array = np.concatenate([array[:n], np.frombuffer(more, np.uint8)])
    return array[3:] if array[:3].tobytes() == _BOM else array


def _read_file(path, empty):
    """``(buffer, n, more)``: ``empty(size)`` filled with the file's first n bytes, and what it still had past its size.

    A pipe or a growing file may give fewer or more bytes than its size.
    Errors become one line naming the file.
    """
    try:
        if os.path.isdir(path):
            raise IsADirectoryError(21, "is a directory")
        with open(path, "rb") as f:
            buffer = empty(os.fstat(f.fileno()).st_size)
            n = f.readinto(buffer)
            return buffer, n, f.read()
    except IsADirectoryError:
        raise JukeboxError(f"{path}: is a directory, expected a file") from None
    except FileNotFoundError:
        raise JukeboxError(f"{path}: no such file") from None
    except PermissionError:
        raise JukeboxError(f"{path}: permission denied") from None
    except OSError as e:
        raise JukeboxError(f"{path}: cannot read: {e.strerror or e}") from None


def _next_newline(buf, pos):
    """Index of the first newline at or after ``pos``, -1 when none."""
    while pos < buf.size:
        window = buf[pos : pos + (1 << 16)]
        hits = np.flatnonzero(window == 10)
        if hits.size:
            return pos + int(hits[0])
        pos += window.size
    return -1


def _chunk_bounds(buf, n_chunks):
    """(lo, hi) chunks of ``buf``, all but the last ending just after a newline."""
    size = buf.size
    n_chunks = max(1, min(n_chunks, size // _CHUNK_BYTES))
    edges = [0]
    for c in range(1, n_chunks):
        cut = _next_newline(buf, c * size // n_chunks)
        edge = size if cut < 0 else cut + 1
        if edge > edges[-1] and edge < size:
            edges.append(edge)
    edges.append(size)
    return list(zip(edges[:-1], edges[1:]))


def split_fields(path, n_fields, expected):
    """Parse a file of ``n_fields`` blank-separated fields a line (the last a count when n_fields is 3).

    Returns the bytes, then (n_tokens, n_records) arrays of token starts,
    lengths and keys (``kernels.parse.token_key``), and the counts (empty
    unless n_fields is 3). A token's start and length are set only when
    its key is a hash; an exact key holds the token itself.
    """
    from .kernels.parse import count_lines, parse_chunk

    buf = _text_array(path)
    chunks = _chunk_bounds(buf, parallel.get_num_threads())
    n_chunks = len(chunks)
    # Only the chunk that ends the file may end in a line without a newline.
    lines = parallel.run_tasks(count_lines, [(buf, lo, hi, hi == buf.size) for lo, hi in chunks])
    line_offsets = np.zeros(n_chunks + 1, np.int64)
    np.cumsum(lines, out=line_offsets[1:])
    n_lines = int(line_offsets[-1])
    n_tokens = min(n_fields, 2)
    starts = np.empty((n_tokens, n_lines), np.int64)
    lengths = np.empty((n_tokens, n_lines), np.int64)
    hashes = np.empty((n_tokens, n_lines), np.uint64)
    values = np.empty(n_lines if n_fields > n_tokens else 0, np.int64)
    status = np.zeros((n_chunks, 3), np.int64)
    parallel.run_tasks(
        parse_chunk,
        [(buf, lo, hi, line_offsets[c], n_fields, starts, lengths, hashes, values, status[c]) for c, (lo, hi) in enumerate(chunks)],
    )
    bad = np.flatnonzero(status[:, 1])
    if bad.size:
        c = bad[0]
        _raise_line_error(path, buf, chunks[c][0], line_offsets[c], status[c], n_fields, expected)
    records = status[:, 0]
    if records.sum() < n_lines:  # blank lines left gaps at the chunk ends
        keep = np.concatenate([np.arange(o, o + r) for o, r in zip(line_offsets[:-1], records)])
        starts, lengths, hashes = starts[:, keep], lengths[:, keep], hashes[:, keep]
        values = values[keep] if values.size else values
    return buf, starts, lengths, hashes, values


def _show(text):
    """A line's bytes as the user should see them in an error: quoted, invisible characters escaped."""
    cut = text[:80]
    shown = cut.decode("utf-8", errors="backslashreplace")
    if not shown.isprintable():
        shown = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in shown)
    return f"'{shown}{'...' if len(text) > len(cut) else ''}'"


def _raise_line_error(path, buf, chunk_start, first_line, status, n_fields, expected):
    from .kernels import parse

    code, local_line = int(status[1]), int(status[2])
    newlines = np.flatnonzero(buf[chunk_start:] == 10)
    lo = chunk_start + (newlines[local_line - 1] + 1 if local_line else 0)
    hi = chunk_start + newlines[local_line] if local_line < newlines.size else buf.size
    text = buf[lo:hi].tobytes()
    fields = _BLANKS.split(text.strip(b" \t\r"))
    if code == parse.ERR_COUNT and len(fields) != n_fields:
        code = parse.ERR_FIELDS  # "a b c d" is a line of the wrong shape, not a bad count "c"
    line = int(first_line) + local_line + 1
    shown = _show(text.rstrip(b"\r"))
    if code == parse.ERR_FIELDS:
        blanks = "" if n_fields == 1 else f" ({n_fields} fields separated by spaces or tabs)"
        found = f"{len(fields)} field{'s' * (len(fields) != 1)}: {shown}"
        raise InputFormatError(path, line, f"{expected}{blanks}", found)
    if code == parse.ERR_COUNT:
        found = f"the count {_show(fields[n_fields - 1])} in {shown}"
        raise InputFormatError(path, line, f"{expected} with a count that is a whole number from 1 to 2**63-1", found)
    found = "a NUL byte" if code == parse.ERR_NUL else "bytes that are not UTF-8"
    raise InputFormatError(path, line, f"{expected} in UTF-8 text", f"{found}: {shown}")


_BUCKET_ENTRIES = 1 << 16  # triples per bucket of rows, about: a bucket's rows (some 1.5 MB) are built in cache


def _build_csr(rows, cols, values, n_rows, n_cols, scratch=None, bucket_entries=_BUCKET_ENTRIES):
    """CSR arrays (indptr, indices, data) of triples: columns sorted in each row, repeated pairs summed.

    Two passes, each split over the threads: the triples go to buckets of
    consecutive rows (each thread its share of the triples), then each
    bucket is radix-sorted by (row, column) and written out as its rows,
    repeats merged, while it is in cache (each thread its share of the
    buckets). One pass of random writes over the whole output would miss
    the cache on nearly every triple.

    ``scratch``, a (2, rows.size) array of 8-byte items that the build may
    overwrite, saves allocating (and faulting in) memory for the buckets.
    The column indices come as int64, as scipy.sparse would make them.
    """
    from .kernels.parse import count_buckets, radix_scratch, rows_of_buckets, scatter_buckets

    n = rows.size
    rows_per_bucket = max(1, n_rows * bucket_entries // max(n, 1))
    shift = min(int(rows_per_bucket).bit_length() - 1, 30)
    n_buckets = max(1, -(-n_rows // (1 << shift)))
    col_bits = max(1, int(n_cols - 1).bit_length())
    n_threads = parallel.get_num_threads()
    cuts = np.linspace(0, n, n_threads + 1).astype(np.int64)
    shares = list(zip(cuts[:-1], cuts[1:]))
    counts = np.zeros((len(shares), n_buckets), np.int64)
    parallel.run_tasks(count_buckets, [(rows, lo, hi, shift, counts[t]) for t, (lo, hi) in enumerate(shares)])
    bucket_starts = np.zeros(n_buckets + 1, np.int64)
    np.cumsum(counts.sum(axis=0), out=bucket_starts[1:])
    # Thread t writes bucket b from the end of the earlier threads' triples of b: file order within a bucket.
    ends = bucket_starts[:-1] + np.cumsum(counts, axis=0) - counts
    if scratch is not None and scratch.shape == (2, n) and scratch.dtype.itemsize == values.dtype.itemsize == 8:
        keys, bucket_values = scratch[0].view(np.uint64), scratch[1].view(values.dtype)
    else:
        keys, bucket_values = np.empty(n, np.uint64), np.empty(n, values.dtype)
    parallel.run_tasks(
        scatter_buckets, [(rows, cols, values, lo, hi, shift, col_bits, ends[t], keys, bucket_values) for t, (lo, hi) in enumerate(shares)]
    )
    indptr = np.empty(n_rows + 1, np.int64)
    indptr[0] = 0
    indices = np.empty(n, np.int64)
    data = np.empty(n, values.dtype)
    kept = np.empty(n_rows, np.int64)
    parallel.run_tasks(
        rows_of_buckets,
        [(keys, bucket_values, bucket_starts, lo, hi, shift, col_bits, n_rows, indptr, indices, data, kept,
          *radix_scratch(bucket_starts, lo, hi, shift + col_bits, values.dtype))
         for lo, hi in parallel.split_by_work(bucket_starts, n_threads)],
    )
    del keys, bucket_values
    if kept.sum() == n:
        return indptr, indices, data
    keep = np.arange(n) < np.repeat(indptr[:-1] + kept, np.diff(indptr))
    packed_indptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(kept, out=packed_indptr[1:])
    return packed_indptr, indices[keep], data[keep]


def read_listens(path: str | os.PathLike) -> Interactions:
    """Read a listening log of ``<user_id> <song_id> <count>`` lines.

    Fields are separated by spaces or tabs; LF or CRLF line ends, blank
    lines, a byte-order mark and a last line without a newline are all
    fine. Ids are opaque tokens ("0042" and "42" differ) and get dense
    indices in order of first appearance. Repeated (user, song) pairs are
    summed, with a JukeboxWarning.

    Returns
    -------
    Interactions
        ``user_items`` is a (n_users, n_songs) CSR array of int64 counts.

    Raises
    ------
    InputFormatError
        For a bad line (naming the file and line), or a file without plays.
    """
    buf, starts, lengths, hashes, counts = split_fields(path, 3, LISTEN_FORMAT)
    if counts.size == 0:
        raise InputFormatError(path, None, f"lines of {LISTEN_FORMAT}", "no plays (the file is empty)")
    # Users and songs have separate vocabularies: factorize them side by side.
    (user_codes, users), (song_codes, songs) = parallel.run_tasks(
        factorize, [(buf, starts[field], lengths[field], hashes[field]) for field in (0, 1)]
    )
    del buf, starts, lengths
    indptr, indices, data = _build_csr(user_codes, song_codes, counts, len(users), len(songs), scratch=hashes)
    del hashes
    n_repeats = counts.size - indices.size
    if n_repeats and counts.sum(dtype=np.float64) >= 2.0**62:
        _check_summed_counts(path, user_codes, song_codes, counts, users, songs, indptr, indices, data)
    if n_repeats:
        warnings.warn(repeats_message(path, n_repeats), JukeboxWarning, stacklevel=2)
    user_items = sp.csr_array((data, indices, indptr), shape=(len(users), len(songs)))
    user_items.has_sorted_indices = True
    return Interactions(user_items, users, songs, int(n_repeats))


def _check_summed_counts(path, user_codes, song_codes, counts, users, songs, indptr, indices, data):
    """Refuse repeated pairs whose int64 sum wrapped around (only huge counts get here)."""
    _, _, totals = _build_csr(user_codes, song_codes, counts.astype(np.float64), len(users), len(songs))
    # A wrapped sum is off by a multiple of 2**64; float64 rounding is far below 2**62.
    wrapped = np.flatnonzero(np.abs(totals - data.astype(np.float64)) > 2.0**62)
    if wrapped.size:
        p = wrapped[0]
        user = users[int(np.searchsorted(indptr, p, side="right")) - 1]
        raise InputFormatError(
            path, None, "counts of one (user, song) pair that add up to at most 2**63-1",
            f"repeated lines of user {user!r} and song {songs[int(indices[p])]!r} whose counts add up to more",
        )


def read_user_ids(path: str | os.PathLike) -> IdMap:
    """Read a file of user ids, one a line, blank lines skipped.

    Returns an IdMap of the distinct ids in file order; a repeated id is
    kept once, with a JukeboxWarning. An empty file gives an empty IdMap.
    """
    buf, starts, lengths, hashes, _ = split_fields(path, 1, USER_FORMAT)
    codes, ids = factorize(buf, starts[0], lengths[0], hashes[0])
    n_repeats = codes.size - len(ids)
    if n_repeats:
        warnings.warn(
            f"{path}: {n_repeats} user ids are listed more than once; each is answered once",
            JukeboxWarning,
            stacklevel=2,
        )
    return ids


LAYOUTS = ("text", "tsv", "jsonl")


def format_recommendations(
    users: IdMap, songs: IdMap, recommended: np.ndarray, scores: np.ndarray | None = None, layout: str = "text"
) -> bytes:
    """Recommendations as bytes, one user after another, in ``layout``.

    - ``text``: a line per user: the id of ``users[r]``, then the ids of the songs of row r;
    - ``tsv``: a line per song: ``user<TAB>song<TAB>rank<TAB>score`` (rank from 1);
    - ``jsonl``: a line per user: ``{"user": ..., "songs": [...], "scores": [...]}``.

    Parameters
    ----------
    users, songs : IdMap
    recommended : ndarray, (len(users), k), int
        Song indices, best first; -1 entries are left out.
    scores : ndarray, (len(users), k), float, optional
        Their scores; needed by ``tsv`` and ``jsonl``.
    """
    from .kernels.format import measure_lines, write_lines

    recommended = np.ascontiguousarray(recommended, np.int32)
    if recommended.ndim != 2 or recommended.shape[0] != len(users):
        raise ValueError(f"recommended must be ({len(users)}, k), got shape {recommended.shape}")
    if recommended.size and recommended.max() >= len(songs):
        raise ValueError(f"recommended holds song index {recommended.max()} but there are {len(songs)} songs")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if layout != "text":
        if scores is None or np.shape(scores) != recommended.shape:
            raise ValueError(f"the {layout} layout needs the scores, of shape {recommended.shape}")
        return _format_with_scores(users, songs, recommended, scores, layout)
    shares = parallel.split(len(users), parallel.get_num_threads())
    lengths = np.empty(len(users) + 1, np.int64)
    parallel.run_tasks(
        measure_lines, [(users.offsets[lo : hi + 1], songs.offsets, recommended[lo:hi], lengths[lo + 1 : hi + 1]) for lo, hi in shares]
    )
    lengths[0] = 0
    line_starts = np.cumsum(lengths)
    out = np.empty(line_starts[-1], np.uint8)
    parallel.run_tasks(
        write_lines,
        [(users.data, users.offsets[lo : hi + 1], songs.data, songs.offsets, recommended[lo:hi], line_starts[lo:hi], out) for lo, hi in shares],
    )
    return memoryview(out)


def _format_with_scores(users, songs, recommended, scores, layout):
    import json

    user_ids, song_ids = users.tolist(), songs.tolist()
    lines = []
    for user, row, row_scores in zip(user_ids, recommended.tolist(), np.asarray(scores, np.float64).tolist()):
        kept = [(song_ids[i], score) for i, score in zip(row, row_scores) if i >= 0]
        if layout == "tsv":
            lines.extend(f"{user}\t{song}\t{rank}\t{score:.7g}\n" for rank, (song, score) in enumerate(kept, 1))
        else:
            record = {"user": user, "songs": [song for song, _ in kept], "scores": [float(f"{s:.7g}") for _, s in kept]}
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    return "".join(lines).encode("utf-8")


def _output_target(path):
    """(path to write, st_mode or None when new) of an output path; JukeboxError when it cannot be one."""
    if not path:
        raise JukeboxError("the output path is empty")
    real = os.path.realpath(path)  # through a symlink: replace its target, not the link
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as e:
        raise JukeboxError(f"{path}: cannot write: {e.strerror}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise JukeboxError(f"{path}: is a directory, expected an output file")
    if mode is None or stat.S_ISREG(mode):
        directory = os.path.dirname(real)
        if not os.path.isdir(directory):
            raise JukeboxError(f"{path}: cannot write: the directory {directory} does not exist")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise JukeboxError(f"{path}: cannot write: no permission to create files in {directory}")
    return real, mode


def check_output(path):
    """Raise JukeboxError now if ``path`` ('-' or None: stdout) cannot take the output, before a long run."""
    if path is not None and path != "-":
        _output_target(os.fspath(path))


def write_output(path: str | os.PathLike | None, payload: bytes | memoryview) -> None:
    """Write bytes to ``path`` ('-' or None: stdout) so no reader ever sees half of them.

    A regular file (new or existing) is written to a temporary file in the
    same directory and renamed over the target; a device, pipe or FIFO is
    written in place, since renaming over it would replace the node.
    """
    if path is None or path == "-":
        _write_stream(sys.stdout.buffer, payload, "<stdout>")
        return
    path = os.fspath(path)
    real, mode = _output_target(path)
    if mode is not None and not stat.S_ISREG(mode):
        try:
            with open(real, "wb") as f:
                _write_stream(f, payload, path)
        except OSError as e:
            raise JukeboxError(f"{path}: cannot write: {e.strerror or e}") from None
        return
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(real), prefix=f".{os.path.basename(real)}.", suffix=".tmp")
    except OSError as e:
        raise JukeboxError(f"{path}: cannot write: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            _write_stream(f, payload, path)
            f.flush()
            os.fsync(f.fileno())
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        else:
            os.chmod(tmp, stat.S_IMODE(mode))
        os.replace(tmp, real)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise JukeboxError(f"{path}: cannot write: {e.strerror or e}") from None
        raise


def _write_stream(stream, payload, name):
    try:
        stream.write(payload)
        stream.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        raise JukeboxError(f"{name}: cannot write: {e.strerror or e}") from None

