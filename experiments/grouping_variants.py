"""Grouping by data variant and model settings (issue 27; docs/design.md#brodatz-textured-mnist).

The same models trained on the Brodatz plates and on the two controls of the same environment (``textures=flat``:
two flat greys, the cue a Gaussian mixture groups by; ``textures=sinusoid``: plane waves, the Tagger authors'
textures) are different data, and a config trained with other model settings (e.g. Gaussian inputs on Shapes) is
another model, so their runs must not share a row. This script reads finished runs' folders, sorts them by data set
(Shapes or textured MNIST), data variant (the plates, texture scale and contrast in each record's ``train_config``)
and the model settings a run changed (its ``model_overrides``), and writes one section per variant with
``rladder-stream reproduce shapes`` / ``brodatz``'s table, claims, seeds and curves
(:func:`rladder_stream.reproduce.grouping.grouping_markdown`), the records beside it:

    python experiments/grouping_variants.py /work/runs/tmnist/*-seed* --doc docs/results/texture_variants.md

``--from-records FILE`` starts from committed records (a JSON list, as written beside a document), so runs whose
folders are gone and new run folders make one document.

Runs were trained by ``rladder-stream train`` (their commands are in each record's ``train_config``).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from rladder_stream.reproduce.common import (add_records_option, merge_records, read_records, timestamp, write_document,
                                             write_records)
from rladder_stream.model.registry import REGISTRY
from rladder_stream.reproduce.grouping import BRODATZ, SHAPES, grouping_markdown, iterations, textured_intro
from rladder_stream.training.settings import DataSettings

#: plates -> what the section says they are
PLATES = {
    "brodatz": "the 20 Brodatz plates of docs/design.md#brodatz-textured-mnist (photographed textures, each normalised "
               "to mean grey 0.5)",
    "brodatz-scans": "the 14 whole-plate Brodatz scans of the data (D1-D12, D73, D75) at their own grey levels (mean "
                     "greys 0.21-0.76), area-averaged to 300x300",
    "sinusoid": "20 plane waves (the Tagger authors' kind of texture), cropped, rotated and scaled as the Brodatz plates",
    "freq20": "the Tagger authors' own 20 plane waves (periodic on a 38-pixel grid, periods 1.7-9.5 pixels, min-max "
              "scaled to [0, 1])",
    "flat": "20 uniform greys from 0.2 to 0.8: digit and background differ in grey level alone (the grey-level control)",
}


def recipe(result: Mapping[str, Any]) -> str:
    """The model settings a run changed from its config's (``train_config.model_overrides``), as ``key=value`` words,
    the run it started from (``init_from``) where it was warm-started, and the true-start diagnostic
    (``true_start_steps``) where a run had it: runs of one config with other settings or another start are other
    models, so they get their own section."""
    train_config = result.get("train_config") or {}
    overrides = train_config.get("model_overrides") or {}
    words = [f"{key}={overrides[key]}" for key in sorted(overrides)]
    if train_config.get("init_from"):  # a warm start is another recipe; its source named by run folder, seed dropped
        words.append(f"started from {re.sub(r'-seed[0-9]+$', '', Path(train_config['init_from']).parent.name)}")
    if train_config.get("true_start_steps"):  # masks started at the true segmentation early on: another recipe
        words.append(f"true starts for {train_config['true_start_steps']} steps")
    return " ".join(words)


def variant(result: Mapping[str, Any]) -> tuple[str, float, float, bool, str]:
    """``(plates, texture scale, texture contrast, training crops augmented, recipe)`` of a run, from its record's
    training settings; a Shapes run's plates are ``"shapes"``."""
    entry = REGISTRY.get(str(result.get("model")))
    if entry is not None and entry.task == "shapes":
        return "shapes", 1.0, 1.0, True, recipe(result)
    tc, default = result.get("train_config") or {}, DataSettings()
    return (str(tc.get("textures", default.textures)), float(tc.get("texture_scale", default.texture_scale)),
            float(tc.get("texture_contrast", default.texture_contrast)),
            bool(tc.get("texture_augment", default.texture_augment)), recipe(result))


def variant_name(key: tuple[str, float, float, bool, str]) -> str:
    plates, scale, contrast, augmented, settings = key
    data = "Shapes" if plates == "shapes" else f"Textured MNIST, {plates}, texture scale {scale:g}" + (
        f", contrast {contrast:g}" if contrast != 1.0 else "") + ("" if augmented else ", training crops not augmented")
    return data + (f"; model settings {settings}" if settings else "")


def stopped_run_words(folder: Path) -> str:
    """`` (config, data variant)`` of a stopped run, from the training settings its ``last.pt`` holds ("" if none)."""
    if not (folder / "last.pt").exists():
        return ""
    from rladder_stream.streaming.checkpoint import load_checkpoint

    config, _, extra = load_checkpoint(folder / "last.pt")
    train_config = extra.get("train_config") or {}
    record = {"model": train_config.get("model", config.name), "train_config": train_config}
    return f" (`{record['model']}`, {variant_name(variant(record))})"


def last_iteration_value(values: Mapping[str, str], name: str) -> tuple[str, float] | None:
    """``(label, value)`` of metric ``name`` at the last iteration logged (``name_3`` over ``name_1``), else ``name``."""
    per_iteration = iterations({"test": values}, name)
    if per_iteration:
        return f"at iteration {per_iteration[-1].rsplit('_', 1)[1]}", float(values[per_iteration[-1]])
    return ("", float(values[name])) if name in values else None


def unfinished_lines(folders: Sequence[Path]) -> list[str]:
    """A line per run folder without results (stopped early): its last validation AMI at the last iteration, the
    chance level and the largest group's share from its ``log.csv``, so a stopped run is reported rather than dropped."""
    lines = []
    for folder in folders:
        last: dict[str, str] = {}
        log = folder / "log.csv"
        if log.exists():
            for row in csv.DictReader(log.open()):
                if row["kind"] == "valid":
                    if row["step"] != last.get("step"):
                        last = {"step": row["step"]}
                    last[row["metric"]] = row["value"]
        seen = "no validation logged"
        if last:
            ami, largest = last_iteration_value(last, "ami"), last_iteration_value(last, "largest_group")
            seen = f"last validation at step {last['step']}: AMI " + (" ".join(filter(None, (ami[0], f"{ami[1]:.3f}"))) if ami else "—")
            seen += f" against {float(last.get('ami_shuffled', 'nan')):.3f} shuffled"
            if largest:
                seen += f", the largest group {largest[1]:.2f} of the pixels"
            if "class_error" in last:
                seen += f", class error {float(last['class_error']):.1f} %"
        lines.append(f"- `{folder.name}`{stopped_run_words(folder)}: stopped before its test (no results.json); {seen}.")
    return lines


STOPPED_HEADING = "## Runs stopped before their test"


def stopped_lines_of(doc: Path, except_names: Sequence[str] = ()) -> list[str]:
    """The stopped-run lines of an earlier ``doc`` (none if it has none), less those of the runs named: with
    ``--from-records`` a stopped run's folder may be gone, and its line is all that is left of it."""
    if not doc.exists():
        return []
    text = doc.read_text()
    if STOPPED_HEADING not in text:
        return []
    section = text.split(STOPPED_HEADING, 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines()
            if line.startswith("- `") and line[3:].split("`", 1)[0] not in except_names]


def document(results: Sequence[Mapping[str, Any]], command: str | None, generated: str | None = None,
             unfinished: Sequence[Path] = (), stopped_before: Sequence[str] = ()) -> str:
    """One section per data variant (Brodatz first, then the controls), each the grouping document of its runs
    with its headings moved one level down; then the runs that had not finished: those given, and
    ``stopped_before`` (lines kept from an earlier document)."""
    order = ["shapes", *PLATES]
    keys = sorted({variant(r) for r in results}, key=lambda k: (order.index(k[0]) if k[0] in order else len(order), k[1:]))
    textured = any(key[0] != "shapes" for key in keys)
    lines = [f"# {'Textured MNIST' if textured else 'Shapes'} by data variant and model settings: does the model group?", ""]
    if generated:
        lines += [f"Generated {generated} by `experiments/grouping_variants.py`.", ""]
    if textured:
        lines += ["The same environment (`envs/textured_mnist.py`) with different plates: " + "; ".join(
            f"`{name}`: {what}" for name, what in PLATES.items()) + ".", ""]
    lines += ["Each section is one data variant's runs with one set of model settings; where a section names settings,",
              "they replace the config's (and what its introduction says of them).", ""]
    for key in keys:
        runs = [r for r in results if variant(r) == key]
        if key[0] == "shapes":
            data = replace(SHAPES, title=variant_name(key))
        else:
            data = replace(BRODATZ, title=variant_name(key),
                           intro=textured_intro(f"Textured MNIST with `textures={key[0]}` (`envs/textured_mnist.py`)", "one plate"))
        section = grouping_markdown(data, runs, command=command)
        lines += [("#" + line) if line.startswith("#") else line for line in section.splitlines()] + [""]
    if unfinished or stopped_before:
        lines += [STOPPED_HEADING, ""] + list(stopped_before) + unfinished_lines(unfinished) + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", help="run folders holding results.json (folders without one are listed as stopped)")
    parser.add_argument("--doc", required=True, help="the Markdown document; its records go beside it (.json)")
    add_records_option(parser, add_runs=False)  # run folders are this script's positional arguments
    args = parser.parse_args(argv)
    # committed records (runs whose folders are gone) and new folders make one document
    records, results, unfinished = (read_records(parser, args.from_records) if args.from_records else []), [], []
    for folder in map(Path, args.runs):
        path = folder / "results.json"
        if path.exists():
            results.append(json.loads(path.read_text()))
        else:
            unfinished.append(folder)
            print(f"{folder}: no results.json (not finished): listed as stopped", file=sys.stderr)
    results = merge_records(records, results)  # a run folder given anew replaces its committed record
    if not results:
        parser.error("no finished run among the folders given")
    command = "python experiments/grouping_variants.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    given = [Path(folder).name for folder in args.runs]
    kept = stopped_lines_of(Path(args.doc), given) if args.from_records else []
    write_document(args.doc, document(results, command, timestamp(), unfinished, kept))
    write_records(args.doc, results)
    print(f"wrote {args.doc} ({len(results)} runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
