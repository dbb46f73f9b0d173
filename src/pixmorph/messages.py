"""Messages on the terminal are one line each: a file name with a line break in it is shown escaped."""

from __future__ import annotations

_CONTROL = {i: f"\\x{i:02x}" for i in (*range(32), 127)} | {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def one_line(text: object) -> str:
    """``text`` with its control characters escaped (``bad\\nname.png``), so that it stays on its line."""
    return str(text).translate(_CONTROL)
