"""Private Numba kernels. They take clean float64 arrays and trust their input:
validation happens once, in the public wrappers (``numdiff.score``)."""
