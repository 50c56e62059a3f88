"""``exec_form``: when ``sh -c CMD`` may become ``sh -c "exec CMD"``."""

from __future__ import annotations

import shlex
import shutil

# A command that is one simple command can be exec'd by the shell: the app then leads its group,
# receives the stop signal itself, and its exit status is its own rather than the shell's.
_OPERATOR = set("();<>|&")
_SHELL_WORDS = {"cd", "exec", "export", "if", "for", "while", "until", "case", "set", "source", ".", "eval",
                "trap", "ulimit", "umask", "{", "!", "[", "test", "wait"}


def exec_form(cmd: str, path: str | None = None) -> str:
    """``cmd`` prefixed with ``exec`` when that changes nothing but who the process is: one simple
    command (no operator outside quotes) whose first word is a program on ``path``, not a builtin."""
    if "\n" in cmd:
        return cmd
    try:
        lexer = shlex.shlex(cmd, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError:
        return cmd
    if not words or any(set(w) <= _OPERATOR for w in words):
        return cmd
    if "=" in words[0] or words[0] in _SHELL_WORDS:
        return cmd
    if "/" not in words[0] and shutil.which(words[0], path=path) is None:
        return cmd  # a builtin such as `exit`, or not found: let the shell say so
    return f"exec {cmd}"
