"""Rich consoles for the command line that never interpret user text.

Scenario files, names and paths are user text: printed as rich markup, ``[/x]`` would
crash the printer and ``[bold]`` would vanish, and with emoji codes on, ``line100.yaml:100:``
would print ``💯``. Every console here has emoji and highlighting off; messages that mix
lbsim's own markup with user text pass the user part through :func:`rich.markup.escape`
(:func:`error_line` does it for the common case).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape


def out_console(**kw: Any) -> Console:
    """A console on stdout: no emoji codes, no highlighting of numbers and paths."""
    kw.setdefault("highlight", False)
    return Console(emoji=False, **kw)


def err_console(**kw: Any) -> Console:
    """A console on stderr, as :func:`out_console`, wrapping softly (messages stay one line)."""
    kw.setdefault("highlight", False)
    kw.setdefault("soft_wrap", True)
    return Console(stderr=True, emoji=False, **kw)


def error_line(message: object) -> str:
    """``error: MESSAGE`` as markup, the message escaped."""
    return f"[bold red]error[/]: {escape(str(message))}"


def warning_line(message: object) -> str:
    """``warning: MESSAGE`` as markup, the message escaped."""
    return f"[bold yellow]warning[/]: {escape(str(message))}"


def cell(value: object) -> str:
    """A table cell holding user text (tables parse their cells as markup)."""
    return escape(str(value))
