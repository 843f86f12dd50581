"""The kernel room: Numba kernels on raw arrays, arrays in and arrays out.

Kernels do not validate their inputs; each states its preconditions in an
``# Assumes:`` line and the front end (``jukebox_fast``) checks them once.
Every kernel is compiled on first use and cached on disk (``cache=True``),
so importing this package compiles nothing.
"""


def kernel(function):
    """Compile ``function`` as every kernel here is: on first use, cached on disk, releasing the GIL.

    Kernels are called from Python and from each other, never passed around
    as first-class functions, so Numba's C-callable wrapper of each is left
    out (``no_cfunc_wrapper``): it would only add compile time to a first run.
    """
    from numba import njit

    return njit(cache=True, nogil=True, no_cfunc_wrapper=True)(function)
