"""Reproducing the paper's tables (docs/design.md#the-results-to-reproduce): one module per table and one registry
of them (:data:`TABLES`, with a line for users in :data:`SUMMARIES`).

Adding a table is one module with a ``<name>_cli_main(argv)`` and one line in :data:`TABLES`; what the tables
share (statistics, the number formatter, claims, documents, training the runs) is :mod:`.common`.
"""

from __future__ import annotations

import importlib

from ..arguments import OneLineArgumentParser

#: table -> "module:command(argv)"; each table's own options are in its module's parser
TABLES: dict[str, str] = {
    "table1": "rladder_stream.reproduce.table1:table1_cli_main",
    "table2": "rladder_stream.reproduce.table2:table2_cli_main",
    "table3": "rladder_stream.reproduce.table3:table3_cli_main",
    "table4": "rladder_stream.reproduce.table4:table4_cli_main",
    "shapes": "rladder_stream.reproduce.grouping:shapes_cli_main",
    "brodatz": "rladder_stream.reproduce.grouping:brodatz_cli_main",
}
#: table -> what it measures, for ``rladder-stream reproduce --help``
SUMMARIES: dict[str, str] = {
    "table1": "Occluded Moving MNIST, all digits labelled: classification error of the RLadder, its ablations and "
              "baselines",
    "table2": "Occluded Moving MNIST with 1,000 labelled digits: the same models with and without Mean Teacher",
    "table3": "polyphonic music: how well each model predicts the next notes (NLL per time step) on four data sets",
    "table4": "textured digits: how well the RTagger, the Tagger and a ConvNet find the objects (AMI) and classify "
              "them; and the RTagger's grouping on Moving MNIST",
    "shapes": "a sanity test, not a table of the paper: do Taggers and RTaggers group simple shapes at all",
    "brodatz": "grouping on Table 4's textured digits, measured after every iteration",
}

DESCRIPTION = """\
Reproduce a table of the paper (Recurrent Ladder Networks, NIPS 2017) with this package: the command trains every row
of the table for several seeds, each an ordinary training run in its own folder under --out, then writes the table,
beside the paper's numbers, as a markdown document (--doc). Finished runs are reused and interrupted ones resumed, so
running the same command again continues a reproduction that stopped. The full tables take hours to days; --size tiny
and --budget-s show the whole procedure in minutes. The tables:

""" + "\n".join(f"  {name:9s}{text}" for name, text in SUMMARIES.items())


def reproduce_cli_main(argv: list[str]) -> int:
    """``rladder-stream reproduce TABLE [options]``: run the table's own command (``TABLE --help`` lists them)."""
    if argv and argv[0] in TABLES:
        module, function = TABLES[argv[0]].split(":")
        return int(getattr(importlib.import_module(module), function)(argv[1:]) or 0)
    parser = OneLineArgumentParser(prog="rladder-stream reproduce", description=DESCRIPTION,
                                   examples=["rladder-stream reproduce table1 --size tiny --seeds 1 --budget-s 60",
                                             "rladder-stream reproduce table3 --seeds 2 --out runs/table3",
                                             "rladder-stream reproduce table1 --help"])
    parser.add_argument("table", choices=list(TABLES), metavar="TABLE",
                        help=f"which table: {', '.join(TABLES)}; 'rladder-stream reproduce TABLE --help' lists its options")
    parser.parse_args(argv[:1])
    return 2  # not reached: an unknown or missing table is an argument error
