"""The README's examples run as written and print what their comments say.

Every ```python block of README.md runs, in order, in one namespace (later blocks
use earlier names), except the GPU one, which needs a card. Where a ``print`` line
ends in a comment that starts with a Python literal (``# (5, 2)``, ``# 0.0: ...``),
the printed value must equal that literal.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def blocks():
    return [b for b in BLOCK.findall(README.read_text()) if "cupy" not in b]


def expected_prints(code):
    """The literal each commented ``print`` line promises, in order (None: no promise)."""
    promises = []
    for line in code.splitlines():
        if not line.startswith("print("):
            continue
        comment = line.partition("#")[2].strip()
        literal = re.split(r":\s|\s{2,}|\s(?=[a-z])", comment, maxsplit=1)[0] if comment else ""
        try:
            promises.append(ast.literal_eval(literal))
        except (ValueError, SyntaxError):
            promises.append(None)
    return promises


def test_the_readme_examples_run_and_print_what_they_say():
    code = blocks()
    assert len(code) >= 2
    printed = []
    # Each print call recorded whole (an array may print over several lines).
    namespace = {"print": lambda *args: printed.append(" ".join(map(str, args)))}
    for block in code:
        printed.clear()
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - the README's own code
        promises = expected_prints(block)
        assert len(printed) == len(promises)
        for line, promise in zip(printed, promises):
            if promise is not None:
                assert ast.literal_eval(line) == promise, f"README printed {line!r}"


def test_a_wrong_promise_is_caught():
    """The parser reads the literals, so a changed comment would fail the test above."""
    assert expected_prints("print(x.shape)   # (5, 2)\nprint(y)  # 0.0: no copies\n") == [
        (5, 2), 0.0]
    assert expected_prints("print(r.x.shape, r.nfev)  # (1000, 2) 100") == [None]
