"""``max`` / ``min`` of two floats that LLVM vectorises inside reductions.

Numba's ``max(a, b)`` lowers to a compare and select without fast-math flags,
so a ``max`` over a block stays scalar (one compare latency per element). With
the flags on both the compare and the select, LLVM recognises a min/max
reduction and uses ``vmaxpd``. Callers guarantee that no operand is NaN.
"""

from numba.core import types
from numba.extending import intrinsic


def _select_intrinsic(op):
    @intrinsic
    def select_fn(typingctx, a, b):
        sig = types.float64(types.float64, types.float64)

        def codegen(context, builder, signature, args):
            lhs, rhs = args
            keep_lhs = builder.fcmp_ordered(op, lhs, rhs, flags=("fast",))
            return builder.select(keep_lhs, lhs, rhs, flags=("fast",))

        return sig, codegen

    return select_fn


fast_max = _select_intrinsic(">")
fast_min = _select_intrinsic("<")
