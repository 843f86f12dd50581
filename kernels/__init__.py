"""The kernel room: Numba kernels on raw arrays, arrays in and arrays out.

Kernels do not validate their inputs; each states its preconditions in an
``# Assumes:`` line and the front end (``jukebox_fast``) checks them once.
Every kernel is compiled on first use and cached on disk (``cache=True``),
so importing this package compiles nothing.
"""
