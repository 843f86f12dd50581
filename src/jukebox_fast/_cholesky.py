"""The inverse of a symmetric positive definite float32 matrix, in place, by blocks over BLAS-3.

``invert_spd`` is LAPACK's potrf + potri (Cholesky factor, its triangular
inverse, then the product of that inverse with its transpose, n^3 flops in
all), written out by blocks of columns so that almost all of the work is in
four BLAS-3 calls: SYRK, GEMM, TRSM and TRMM on panels of the matrix, in
place. Only the diagonal blocks go to LAPACK (potrf, trtri, lauum on
``BLOCK`` x ``BLOCK``). LAPACK's own threaded potrf crashes at large n on
some OpenBLAS builds (a float32 matrix of 41,140 songs on two threads),
and so does its threaded SYRK for large n (the trailing update of such a
factor), so this one gives SYRK at most ``PANEL`` columns and the rest of
each update to GEMM: it runs at every n that fits in memory.

The routines come from SciPy's Cython BLAS and LAPACK (the same library
that ``scipy.linalg`` uses) and are called through ctypes, which lets a
panel be given as a pointer into the matrix with its leading dimension,
as BLAS intends: no panel is ever copied. ctypes releases the GIL for each
call.
"""

import ctypes
import functools

import numpy as np

# Columns per block: large enough that the panels' BLAS-3 calls run at the
# machine's GEMM rate, small enough that the diagonal blocks' LAPACK calls
# (serial in effect) are a small share of the n^3.
BLOCK = 1024
# The widest SYRK the factor makes (see ``factor``); a multiple of BLOCK.
PANEL = 4096

_int = ctypes.POINTER(ctypes.c_int)
_float = ctypes.POINTER(ctypes.c_float)
_char = ctypes.c_char_p
_SIGNATURES = {
    # name: argument types, Fortran order, every argument by reference
    "ssyrk": (_char, _char, _int, _int, _float, ctypes.c_void_p, _int, _float, ctypes.c_void_p, _int),
    "sgemm": (_char, _char, _int, _int, _int, _float, ctypes.c_void_p, _int, ctypes.c_void_p, _int, _float,
              ctypes.c_void_p, _int),
    "strsm": (_char, _char, _char, _char, _int, _int, _float, ctypes.c_void_p, _int, ctypes.c_void_p, _int),
    "strmm": (_char, _char, _char, _char, _int, _int, _float, ctypes.c_void_p, _int, ctypes.c_void_p, _int),
    "spotrf": (_char, _int, ctypes.c_void_p, _int, _int),
    "strtri": (_char, _char, _int, ctypes.c_void_p, _int, _int),
    "slauum": (_char, _int, ctypes.c_void_p, _int, _int),
}


@functools.cache
def _routine(name):
    """The Fortran routine ``name`` of SciPy's BLAS or LAPACK as a ctypes function."""
    from numba.extending import get_cython_function_address

    module = "scipy.linalg.cython_lapack" if name in ("spotrf", "strtri", "slauum") else "scipy.linalg.cython_blas"
    return ctypes.CFUNCTYPE(None, *_SIGNATURES[name])(get_cython_function_address(module, name))


class _Matrix:
    """An n x n float32 array seen by BLAS in column-major order: ``at(i, j)`` points at entry (i, j).

    A C-ordered array is its own transpose in column-major order, so
    column-major entry (i, j) is C entry (j, i): the column-major upper
    triangle is the C lower triangle.
    """

    def __init__(self, a):
        self.n = a.shape[0]
        self.base = a.ctypes.data
        self.ld = ctypes.byref(ctypes.c_int(self.n))

    def at(self, i, j):
        return ctypes.c_void_p(self.base + 4 * (i + j * self.n))


def _i(value):
    return ctypes.byref(ctypes.c_int(value))


def _f(value):
    return ctypes.byref(ctypes.c_float(value))


def _check(info, what):
    if info.value != 0:
        raise np.linalg.LinAlgError(f"{what} failed (LAPACK info {info.value})")


def _step_progress(progress, step, n):
    """A callback for one of the three n^3/3 steps: ``done(j)`` after its columns < j are through."""
    if progress is None:
        return lambda j: None
    # The share of a step's flops in its columns < j: the factor's blocks shrink to the right,
    # the triangular inverse's grow, the product's peak in the middle.
    share = (
        lambda t: 1 - (1 - t) ** 3,
        lambda t: t**3,
        lambda t: (3 * t**2 - t**3) / 2,
    )[step]
    return lambda j: progress((step + share(j / n)) / 3)


def factor(m, block=BLOCK, done=lambda j: None, panel=PANEL):
    """Upper Cholesky factor U (A = U^T U) in place, right-looking by blocks of columns.

    Returns 0, or the 1-based column at which A is not positive definite
    (as LAPACK's info).
    """
    potrf, trsm, syrk, gemm = _routine("spotrf"), _routine("strsm"), _routine("ssyrk"), _routine("sgemm")
    n, info = m.n, ctypes.c_int(0)
    for k in range(0, n, block):
        kb, rest = min(block, n - k), n - k - min(block, n - k)
        potrf(b"U", _i(kb), m.at(k, k), m.ld, ctypes.byref(info))
        if info.value != 0:
            return k + info.value
        if rest:
            # A12 = U11^-T A12, then A22 -= A12^T A12: a panel of columns at a time, SYRK on its
            # diagonal block and GEMM above it. OpenBLAS's threaded SYRK crashes for large n
            # (n = 40,000, k = 1,024 on two threads), so no SYRK is given more than PANEL columns.
            trsm(b"L", b"U", b"T", b"N", _i(kb), _i(rest), _f(1.0), m.at(k, k), m.ld, m.at(k, k + kb), m.ld)
            for c in range(k + kb, n, panel):
                width = min(panel, n - c)
                if c > k + kb:
                    gemm(b"T", b"N", _i(c - k - kb), _i(width), _i(kb), _f(-1.0), m.at(k, k + kb), m.ld, m.at(k, c), m.ld,
                         _f(1.0), m.at(k + kb, c), m.ld)
                syrk(b"U", b"T", _i(width), _i(kb), _f(-1.0), m.at(k, c), m.ld, _f(1.0), m.at(c, c), m.ld)
        done(k + kb)
    return 0


def invert_triangular(m, block=BLOCK, done=lambda j: None):
    """U^-1 in place for the upper triangular U, left to right by blocks of columns (LAPACK's trtri)."""
    trtri, trmm, trsm = _routine("strtri"), _routine("strmm"), _routine("strsm")
    n, info = m.n, ctypes.c_int(0)
    for j in range(0, n, block):
        jb = min(block, n - j)
        if j:
            # Columns j..j+jb of U^-1 above the diagonal block: U[:j,:j]^-1 (done) U[:j, j:] U_jj^-1, negated.
            trmm(b"L", b"U", b"N", b"N", _i(j), _i(jb), _f(1.0), m.at(0, 0), m.ld, m.at(0, j), m.ld)
            trsm(b"R", b"U", b"N", b"N", _i(j), _i(jb), _f(-1.0), m.at(j, j), m.ld, m.at(0, j), m.ld)
        trtri(b"U", b"N", _i(jb), m.at(j, j), m.ld, ctypes.byref(info))
        _check(info, "the triangular inverse of a diagonal block")
        done(j + jb)


def multiply_by_transpose(m, block=BLOCK, done=lambda j: None):
    """U U^T in place for the upper triangular U, upper triangle only, by blocks of columns (LAPACK's lauum)."""
    lauum, trmm, gemm, syrk = _routine("slauum"), _routine("strmm"), _routine("sgemm"), _routine("ssyrk")
    n, info = m.n, ctypes.c_int(0)
    for i in range(0, n, block):
        ib, rest = min(block, n - i), n - i - min(block, n - i)
        trmm(b"R", b"U", b"T", b"N", _i(i), _i(ib), _f(1.0), m.at(i, i), m.ld, m.at(0, i), m.ld)
        lauum(b"U", _i(ib), m.at(i, i), m.ld, ctypes.byref(info))
        _check(info, "the product of a diagonal block with its transpose")
        if rest:
            gemm(b"N", b"T", _i(i), _i(ib), _i(rest), _f(1.0), m.at(0, i + ib), m.ld, m.at(i, i + ib), m.ld,
                 _f(1.0), m.at(0, i), m.ld)
            syrk(b"U", b"N", _i(ib), _i(rest), _f(1.0), m.at(i, i + ib), m.ld, _f(1.0), m.at(i, i), m.ld)
        done(i + ib)


def invert_spd(a, block=BLOCK, progress=None, panel=PANEL):
    """A^-1 of a symmetric positive definite float32 matrix, in place, reading and writing its lower triangle.

    Parameters
    ----------
    a : ndarray, (n, n), float32, C-contiguous
        A in its lower triangle (the strict upper one is neither read nor
        written); overwritten there with A^-1.
    block : int
        Columns per block.
    progress : callable, optional
        ``progress(fraction)`` after each block, with the share of the
        n^3 flops done so far.
    panel : int
        The widest SYRK of the factor's updates (rounded down to a
        multiple of ``block``, at least ``block``).

    Returns
    -------
    int
        0, or the 1-based index of the leading minor of A that is not
        positive definite (then ``a`` holds a partial factor).

    The caller sets the BLAS thread count (threadpoolctl); BLAS rounds
    differently on different counts.
    """
    if a.dtype != np.float32 or a.ndim != 2 or a.shape[0] != a.shape[1] or not a.flags.c_contiguous:
        raise ValueError("invert_spd needs a square C-contiguous float32 array")
    if a.shape[0] == 0:
        return 0
    m, n = _Matrix(a), a.shape[0]
    info = factor(m, block, _step_progress(progress, 0, n), panel=max(block, panel // block * block))
    if info:
        return info
    invert_triangular(m, block, _step_progress(progress, 1, n))
    multiply_by_transpose(m, block, _step_progress(progress, 2, n))
    return 0
