"""An ``exp`` that LLVM vectorises inside Numba loops.

Numba's ``np.exp`` is a scalar libm call inside loops (no SVML here), about 4x
slower than a SIMD exp. :func:`exp_flushed` is branch-free scalar code that the
loop vectoriser turns into SIMD, so it can sit inside the loops that form the
logits and the weighted sums (one pass over a block instead of three):

* reduction ``y = k ln2 + r``, ``|r| <= ln2/2``: ``k`` is rounded by adding and
  subtracting ``1.5 * 2^52`` (its low mantissa bits then hold ``k``), and ``ln 2``
  is split (Cody-Waite) so that ``k * _LN2_HI`` is exact;
* ``e^r = 1 + r + r^2 g(r)``, ``g`` the degree-9 Chebyshev fit of ``(e^r - 1 - r) /
  r^2`` on ``[-ln2/2, ln2/2]`` (``mpmath.chebyfit``), whose error is below
  ``1.8e-17`` relative to ``e^r`` (``tests/numdiff/test_kernels_vexp.py`` checks the
  coefficients as stored, in exact arithmetic): two multiply-adds fewer than the
  degree-13 Taylor polynomial of the same accuracy (13% faster per ``exp``,
  rounding by the shift another 10%);
* ``2^k`` from the bits of the shifted sum, by integer shift and add.

Measured: <= 1.3e-16 from the exact value on [-100, 0] (tests/numdiff/test_kernels_vexp.py).
Arguments below ``-FLUSH`` (``-inf`` included) give exactly 0: such weights are
negligible next to the reference weight and would otherwise become denormals
downstream. A NaN read from memory also gives 0; one formed by arithmetic that
LLVM may assume NaN-free (the callers' fast-math flags) need not, so callers
must not form NaNs (``capped_block`` rules out the overflow that would). The reduction is compiled without ``reassoc``, which would
fold ``(y - k*hi) - k*lo`` and ``(t - shift)``; LLVM keeps those flags per
instruction when it inlines the function into loops compiled with them.
"""

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from numdiff._kernels.jit import jit, jit_exact

FLUSH = 100.0
_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471803691238  # ln 2 split so that k * _LN2_HI is exact for |k| < 2^20
_LN2_LO = 1.9082149292705877e-10
_ROUNDER = 6755399441055744.0  # 1.5 * 2^52: t = y log2(e) + _ROUNDER rounds to an integer
_ONE_BITS = 1023 << 52  # exponent bits of 1.0
# g(r) = (e^r - 1 - r) / r^2 ~ sum_i G[i] r^(9 - i) on [-ln2/2, ln2/2] (module docstring).
G = (
    2.5100375832561234e-08, 2.7620075879983367e-07, 2.7557268480310024e-06,
    2.4801521322368692e-05, 0.00019841269863040545, 0.0013888888917196719,
    0.008333333333330065, 0.041666666666624164, 0.16666666666666669, 0.5000000000000001,
)
_G0, _G1, _G2, _G3, _G4, _G5, _G6, _G7, _G8, _G9 = G


@intrinsic
def _bits_as_float(typingctx, bits):
    """The float64 whose bit pattern is the int64 ``bits``."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def _float_bits(typingctx, value):
    """The bit pattern of the float64 ``value``, as int64."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@jit_exact
def exp_flushed(y):
    """``e^y`` for ``y <= 709``, exactly 0 for ``y < -FLUSH`` (module docstring on NaN)."""
    t = y * _LOG2E + _ROUNDER
    k = t - _ROUNDER
    r = (y - k * _LN2_HI) - k * _LN2_LO
    g = _G0
    g = g * r + _G1
    g = g * r + _G2
    g = g * r + _G3
    g = g * r + _G4
    g = g * r + _G5
    g = g * r + _G6
    g = g * r + _G7
    g = g * r + _G8
    g = g * r + _G9
    p = (g * r + 1.0) * r + 1.0
    # The low 12 bits of t's mantissa are k mod 2^12; shifted into the exponent
    # field and offset by 1023 they make 2^k for -1022 <= k <= 1023 (the select
    # below discards every k outside, whose bits wrap).
    w = p * _bits_as_float((_float_bits(t) << 52) + _ONE_BITS)
    return w if y >= -FLUSH else 0.0


@jit
def exp_shifted_sum(z, n, shift):
    """Overwrite ``z[:n]`` with ``exp(z - shift)`` (flushed below ``e^-FLUSH``); return the sum.

    Requires ``z <= shift``.
    """
    total = 0.0
    for i in range(n):
        w = exp_flushed(z[i] - shift)
        z[i] = w
        total += w
    return total
