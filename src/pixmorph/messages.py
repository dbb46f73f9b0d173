"""Messages on the terminal are one line each.

Two ways to get there, for two kinds of text:

* :func:`one_line` for a message or a name: a file name with a line break in it is shown escaped
  (``bad\\nname.png``) and its spaces are kept, so that the name stays the file's;
* :func:`collapse_whitespace` for prose from a library (the text of Pillow's or PyTorch's exceptions), whose
  line breaks and indentation carry nothing: each run of whitespace becomes one space. Never for a file name:
  ``my  photos/`` would be named as ``my photos/``.
"""

from __future__ import annotations

_CONTROL = {i: f"\\x{i:02x}" for i in (*range(32), 127)} | {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def one_line(text: object) -> str:
    """``text`` with its control characters escaped (``bad\\nname.png``), so that it stays on its line."""
    return str(text).translate(_CONTROL)


def collapse_whitespace(text: object) -> str:
    """A library's multi-line text (an exception's) on one line: each run of whitespace as one space."""
    return " ".join(str(text).split())
