"""``python -m validation.orders [--quick] [--plot PATH]``: print the measured orders."""

import argparse
import sys

from . import __doc__ as _DOC
from .figure import format_table, plot_orders
from .measure import measure_orders


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m validation.orders",
                                     description=_DOC.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the quick subset of the tests")
    parser.add_argument("--plot", metavar="PATH", help="also write the log-log figure")
    args = parser.parse_args(argv)
    rows = measure_orders(quick=args.quick)
    print(format_table(rows))
    if args.plot:
        plot_orders(rows, args.plot)
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
