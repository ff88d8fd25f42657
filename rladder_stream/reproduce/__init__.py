"""Reproducing the paper's tables (docs/design.md#the-results-to-reproduce): one module per table and one registry
of them.

Adding a table is one module with a ``<name>_cli_main(argv)`` and one line in :data:`TABLES`; what the tables
share (statistics, the number formatter, claims, documents, training the runs) is :mod:`.common`.
"""

from __future__ import annotations

import importlib

from ..arguments import OneLineArgumentParser

#: table -> "module:command(argv)"; each table's own options are in its module's parser
TABLES: dict[str, str] = {
    "table1": "rladder_stream.reproduce.table1:table1_cli_main",  # Occluded Moving MNIST, fully supervised
    "table2": "rladder_stream.reproduce.table2:table2_cli_main",  # semi-supervised, with and without Mean Teacher
    "table3": "rladder_stream.reproduce.table3:table3_cli_main",  # polyphonic music
    "table4": "rladder_stream.reproduce.table4:table4_cli_main",  # Brodatz-textured MNIST, and Moving MNIST
    "shapes": "rladder_stream.reproduce.grouping:shapes_cli_main",  # the grouping sanity test (not a table of the paper)
    "brodatz": "rladder_stream.reproduce.grouping:brodatz_cli_main",  # grouping on Table 4's images, per iteration
}


def reproduce_cli_main(argv: list[str]) -> int:
    """``rladder-stream reproduce TABLE [options]``: run the table's own command (``TABLE --help`` lists them)."""
    if argv and argv[0] in TABLES:
        module, function = TABLES[argv[0]].split(":")
        return int(getattr(importlib.import_module(module), function)(argv[1:]) or 0)
    parser = OneLineArgumentParser(prog="rladder-stream reproduce", description=__doc__)
    parser.add_argument("table", choices=list(TABLES), help="which table of the paper (docs/design.md#the-results-to-reproduce); "
                        "'TABLE --help' for its options")
    parser.parse_args(argv[:1])
    return 2  # not reached: an unknown or missing table is an argument error
