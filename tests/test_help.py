"""Every command's ``--help`` is for the people who run it (issue 28): plain text without reStructuredText markup, a
description and an example, a meaning for every option and its default; ``train --help`` lists every training setting
with its meaning and default and every model setting with its meaning, made from the fields themselves."""

from __future__ import annotations

import argparse
import dataclasses
import re

import pytest

from rladder_stream.apps.cli import main
from rladder_stream.arguments import HelpFormatter, OneLineArgumentParser, plain_text
from rladder_stream.model.config import LadderConfig
from rladder_stream.reproduce import TABLES
from rladder_stream.training.settings import GROUPS, documented_attributes, shown_default
from rladder_stream.training.train import TrainConfig

COMMANDS = ["demo", "configs", "info", "export", "benchmark", "train", "reproduce", "figure4", "groups", "stream-midi"]
EVERY = [[], *([c] for c in COMMANDS), *(["reproduce", t] for t in TABLES)]
MARKUP = ("``", ":func:", ":class:", ":mod:", ":data:", ":meth:", ":attr:", "`_")


def _help(argv: list[str], capsys, monkeypatch, columns: int = 100) -> tuple[str, OneLineArgumentParser]:
    """What ``rladder-stream ARGV --help`` prints, and the parser that printed it."""
    printed = []
    original = OneLineArgumentParser.format_help
    monkeypatch.setattr(OneLineArgumentParser, "format_help", lambda self: (printed.append(self), original(self))[1])
    monkeypatch.setenv("COLUMNS", str(columns))
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out, printed[-1]


@pytest.mark.parametrize("argv", EVERY, ids=[" ".join(a) or "rladder-stream" for a in EVERY])
def test_help_is_plain_text_with_a_description_and_a_meaning_for_every_option(argv, capsys, monkeypatch):
    text, parser = _help(argv, capsys, monkeypatch)
    assert not [m for m in MARKUP if m in text], text
    assert parser.description and len(parser.description.split()) >= 15
    if len(argv) <= 1:  # the commands' own descriptions (a table's reuses its module's, which shows its command)
        assert "\nexamples:\n  rladder-stream " in text or "\nexamples:\n  torchrun " in text
    else:
        assert f"rladder-stream reproduce {argv[1]}" in text
    formatter = HelpFormatter(parser.prog)
    for action in parser._actions:
        assert action.help, (parser.prog, action.dest)
        default = action.default
        if action.option_strings and not any(default is v for v in (None, False, argparse.SUPPRESS)) and default != []:
            assert "default" in formatter._get_help_string(action), (parser.prog, action.dest)


def test_plain_text_strips_the_markup_of_reused_docstrings():
    assert plain_text("``x`` :func:`~a.b.c` :mod:`a.b` :data:`TABLES` `safetensors <https://x.y>`_ `z`") == \
        "x c a.b TABLES safetensors (https://x.y) z"


def test_every_setting_has_a_meaning():
    assert {f.name for group in GROUPS.values() for f in dataclasses.fields(group)} == \
        {f.name for f in dataclasses.fields(TrainConfig)}
    for f in dataclasses.fields(TrainConfig):
        assert len(f.metadata.get("help", "").split()) >= 3, f.name
    meanings = documented_attributes(LadderConfig)
    for f in dataclasses.fields(LadderConfig):
        assert len(meanings.get(f.name, "").split()) >= 2, f.name


def test_train_help_shows_every_setting_with_its_meaning_and_default(capsys, monkeypatch):
    text, _ = _help(["train"], capsys, monkeypatch, columns=2000)  # no wrapping: one line per setting
    sections = text.split("\n\n")
    at = 0
    for group, cls in GROUPS.items():  # grouped, in the order of GROUPS
        at = next(i for i in range(at, len(sections)) if sections[i].startswith(f"{group} settings:\n"))
        for f in dataclasses.fields(cls):
            line = f"  {f.name}  "
            row = next((r for r in sections[at].splitlines() if r.startswith(line.rstrip() + " ")), "")
            assert row.endswith(f"(default: {shown_default(f)})") and len(row.split()) > 4, (f.name, row)
    assert shown_default(next(f for f in dataclasses.fields(TrainConfig) if f.name == "lr")) == "0.002"
    model = next(s for s in sections if s.startswith("model configuration settings:\n")).splitlines()[1:]
    assert [re.match(r"  (\w+)  ", row).group(1) for row in model] == [f.name for f in dataclasses.fields(LadderConfig)]
