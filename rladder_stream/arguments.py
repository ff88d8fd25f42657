"""The argument parser of every command (the command line's, training's, each table's): ``argparse`` whose errors are one
line, as every user error is (docs/design.md#one-error-surface), and whose ``--help`` is plain text for people: reused
docstrings lose their reStructuredText markup, paragraphs are wrapped, indented lines (examples) are kept, and each option
says its default. A base module, so that each room that has a command can use it.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from typing import Any, NoReturn, Sequence

from .errors import one_line

_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`(~?)([^`<]*?)\s*(?:<([^`>]*)>)?`")  # :func:`~a.b`, :class:`label <target>`
_LINK = re.compile(r"`([^`<]+?)\s*<([^`>]+)>`__?")  # `label <https://...>`_
_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)  # ``code``
_INTERPRETED = re.compile(r"(?<![`\w])`([^`\n]+)`(?![`\w])")  # `text` (the default role)


def plain_text(text: str) -> str:
    """``text`` without reStructuredText / Sphinx markup, as a person reads it: ``code`` becomes code,
    :func:`~pkg.mod.name` becomes name (the full path without ``~``), `label <url>`_ becomes label (url)."""

    def role(match: re.Match) -> str:
        short, name, target = match.groups()
        if target is not None:  # :role:`label <target>`
            return name
        return name.rsplit(".", 1)[-1] if short else name

    text = _ROLE.sub(role, text)
    text = _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", text)
    text = _LITERAL.sub(lambda m: m.group(1), text)
    return _INTERPRETED.sub(lambda m: m.group(1), text)


_TERM = re.compile(r"^(\s+\S+\s{2,})(\S.*)$")  # "  term   what it means": a line of a list of terms


def _wrap_line(line: str, width: int, indent: str) -> str:
    """A line of a kept paragraph: as written, except that a too long line of a list of terms is wrapped under its
    meaning (an example command is never wrapped: it has no two spaces in a row)."""
    term = _TERM.match(line)
    if term is None or len(indent + line) <= width:
        return indent + line
    hang = indent + " " * len(term.group(1))
    return textwrap.fill(term.group(2), max(width, len(hang) + 20), initial_indent=indent + term.group(1), subsequent_indent=hang)


class HelpFormatter(argparse.HelpFormatter):
    """Help as plain text: markup stripped (:func:`plain_text`), a description's or epilog's paragraphs wrapped to the
    terminal, paragraphs with indented or bulleted lines (examples, lists) kept as written, and "(default: X)"
    after every option that has a default and does not say it already."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = re.split(r"\n\s*\n", plain_text(text.strip("\n")))
        out = []
        for paragraph in paragraphs:
            lines = paragraph.splitlines()
            if any(line[:1].isspace() or line.lstrip().startswith(("- ", "* ")) for line in lines):
                out.append("\n".join(_wrap_line(line, width, indent) for line in lines))
            else:
                out.append(textwrap.fill(" ".join(paragraph.split()), width, initial_indent=indent, subsequent_indent=indent))
        return "\n\n".join(out)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = plain_text(action.help or "")
        default = action.default
        shown = action.option_strings and not any(default is v for v in (None, False, argparse.SUPPRESS)) and default != []
        if shown and "default" not in text and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


class OneLineArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line, ``error: ... (see 'PROG --help')``, exit status 2, and
    whose help is plain text (:class:`HelpFormatter`); ``examples`` are command lines shown after the options."""

    def __init__(self, *args: Any, examples: Sequence[str] = (), **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        if examples:
            shown = "examples:\n" + "\n".join(f"  {line}" for line in examples)
            kwargs["epilog"] = shown + (f"\n\n{kwargs['epilog']}" if kwargs.get("epilog") else "")
        super().__init__(*args, **kwargs)

    def _print_message(self, message: str, file: Any = None) -> None:
        """As argparse's, but a pipe closed early (``--help | head``) is not swallowed: the command line's entry point
        ends quietly with the status of every other command's output into such a pipe."""
        if message:
            (file or sys.stderr).write(message)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {one_line(Exception(message))} (see '{self.prog} --help')\n")
