"""Real Bach chorales, written as MIDI by music21, streamed through the shipped JSB model (issue 28).

The JSB Chorales benchmark was made from scores on a quarter-note grid by sampling each voice at the start of the
beat (docs/design.md, "MIDI: reading the grid"). This script measures what a user who streams their own chorale
gets under the reader's two rules, ``start`` (the default, the benchmark's) and ``overlap`` (the old default),
beside the shipped test chorale. Two steps, two interpreters:

    # 1. music21 is not a dependency of this package: install it in a venv of its own
    python3 -m venv /tmp/m21 && /tmp/m21/bin/pip install music21
    /tmp/m21/bin/python experiments/real_chorales.py convert /tmp/chorales          # a dozen chorales -> MIDI
    # 2. with the package's own interpreter (no music21 needed)
    RLADDER_STREAM_DATA=../shared/data .venv/bin/python experiments/real_chorales.py measure /tmp/chorales \\
        --doc docs/results/real_chorales.md
    # the benchmark's grid: every four-part chorale of the corpus read under both rules against the data set
    /tmp/m21/bin/python experiments/real_chorales.py convert /tmp/all-chorales --all
    RLADDER_STREAM_DATA=../shared/data .venv/bin/python experiments/real_chorales.py grid /tmp/all-chorales \\
        --doc docs/results/jsb_grid.md

``measure`` streams every ``*.mid`` of the folder (under both rules) and the shipped test chorale through the
model and prints NLL per step and sounding keys per step. With the data folder it also finds the data-set
chorale each file is (the best match over the three splits and the 25 transpositions -12..+12: the benchmark's
chorales are transposed so that nearly all end on C) and streams the file transposed as the data set has it, and
the data set's own sequence, so that what the key explains is seen apart from what the grid explains. ``--doc``
writes the Markdown document and a ``.json`` record beside it.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

#: A dozen four-part chorales of music21's corpus that are chorales of the JSB Chorales *test* split (the twelve
#: closest matches there, Jaccard 0.97-1.0, each a different test chorale; found with ``convert --all`` and
#: ``grid``), so the shipped model never trained on them. ``measure`` checks the match again.
CHORALES = ("bwv9.7", "bwv87.7", "bwv102.7", "bwv148.6", "bwv153.9", "bwv174.5", "bwv245.37", "bwv292", "bwv306",
            "bwv327", "bwv340", "bwv431")
RULES = ("start", "overlap")
SOURCE = "SOURCE.txt"  # what wrote a folder's MIDI files (the music21 version)


def _source(folder: Path) -> str:
    """What ``convert`` recorded about the folder's files ("" for a folder it did not write)."""
    path = folder / SOURCE
    return path.read_text().strip() if path.is_file() else ""


# ------------------------------------------------------------------------------------------------ convert (music21)

def _corpus_names() -> list[str]:
    """Every Bach chorale file name (stem) in music21's corpus, in BWV order."""
    from music21 import corpus

    def order(stem: str) -> tuple[int, int, str]:
        m = re.match(r"bwv(\d+)\.?(\d*)", stem)
        return (int(m[1]), int(m[2] or 0), stem) if m else (10**6, 0, stem)

    return sorted({p.stem for p in corpus.getComposer("bach") if p.suffix == ".mxl"}, key=order)


def convert(out: Path, names: Sequence[str]) -> list[Path]:
    """Write each named chorale as a type-1 MIDI file (one track a voice) under ``out``; skips any that is not
    four voices (the benchmark's chorales are four-part). music21 pads the end with a silent beat; it is cut, so a
    file ends with its last note, as the data set's sequences do."""
    import music21
    from music21 import corpus, midi

    out.mkdir(parents=True, exist_ok=True)
    (out / SOURCE).write_text(f"music21 {music21.__version__}\n")  # read by grid and measure, into their records
    written = []
    for name in names:
        score = corpus.parse(name)
        if len(score.parts) != 4:
            print(f"skip {name}: {len(score.parts)} parts, not four voices", flush=True)
            continue
        try:  # music21 expands the repeats while writing MIDI; a few files' repeat marks are malformed
            mf = midi.translate.music21ObjectToMidiFile(score)
        except Exception as exc:  # music21 raises its own exception types
            print(f"skip {name}: music21 cannot write it as MIDI ({type(exc).__name__}: {exc})", flush=True)
            continue
        for track in mf.tracks:  # the DeltaTime event before END_OF_TRACK is music21's padding beat
            events = track.events
            if len(events) >= 2 and events[-1].type == midi.MetaEvents.END_OF_TRACK and events[-2].type == "DeltaTime":
                events[-2].time = 0
        path = out / f"{name}.mid"
        mf.open(str(path), "wb")
        mf.write()
        mf.close()
        written.append(path)
        print(f"wrote {path}", flush=True)
    return written


# ------------------------------------------------------------------------------------------------ grid (package)

def grid(folder: Path, min_jaccard: float = 0.8) -> dict[str, Any]:
    """Which reading reproduces the JSB data: keys per step of every file under both rules beside the data's,
    and, for the files that are chorales of the data set (best match at least ``min_jaccard`` under either
    rule), how closely each rule's roll matches the data set's sequence."""
    from rladder_stream.envs.data.midi import midi_to_piano_roll

    sequences = _jsb_sequences()
    if sequences is None:
        raise SystemExit("error: grid needs the JSB Chorales data: set RLADDER_STREAM_DATA")
    files = sorted(folder.glob("*.mid"))
    if not files:
        raise SystemExit(f"error: {folder}: no .mid files (write them with `convert {folder} --all`)")
    keys: dict[str, Counter] = {"data set": Counter(int(k) for _, _, seq in sequences for k in seq.sum(1))}
    rows = []
    for path in files:
        row: dict[str, Any] = {"file": path.name}
        for rule in RULES:
            roll = midi_to_piano_roll(path, 1, grid_rule=rule)
            keys.setdefault(rule, Counter()).update(int(k) for k in roll.sum(1))
            row[rule] = {"steps": len(roll), "keys_max": int(roll.sum(1).max()), "match": best_match(roll, sequences)}
        rows.append(row)
        print(f"{path.name:<20} " + "  ".join(
            f"{rule}: max {row[rule]['keys_max']} keys, {row[rule]['match']['split']}[{row[rule]['match']['index']}] "
            f"J={row[rule]['match']['jaccard']:.3f}" for rule in RULES), flush=True)
    return {"keys_per_step": {name: dict(sorted(c.items())) for name, c in keys.items()}, "rows": rows,
            "min_jaccard": min_jaccard, "source": _source(folder)}


def grid_document(record: dict[str, Any]) -> str:
    """The Markdown document of a ``grid`` record."""
    hist, rows, cut = record["keys_per_step"], record["rows"], record["min_jaccard"]
    top = max(max(int(k) for k in h) for h in hist.values())
    lines = [
        "# The JSB Chorales benchmark's grid (issue 28)",
        "",
        "Which reading of a score-like MIDI file gives the JSB Chorales data? Every four-part chorale of music21's "
        f"corpus, written as MIDI by `convert --all` ({record.get('source') or 'music21'}), read on the quarter-note "
        "grid under the reader's two rules (`start`: a key is on in step t when a note sounds at the step's first "
        "instant; `overlap`: when one sounds at any time during the step), beside the data set itself (all three "
        "splits).",
        "",
        "## Sounding keys per step",
        "",
        "| | steps | " + " | ".join(str(k) for k in range(top + 1)) + " | mean | more than 4 |",
        "|---|---:|" + "---:|" * (top + 3),
    ]
    for name, h in hist.items():
        h = {int(k): v for k, v in h.items()}
        n = sum(h.values())
        label = f"{len(rows)} real chorales, `{name}`" if name in RULES else "JSB Chorales data"
        avg, above = sum(k * v for k, v in h.items()) / n, sum(v for k, v in h.items() if k > 4)
        lines.append(f"| {label} | {n} | " + " | ".join(f"{100 * h.get(k, 0) / n:.1f}%" for k in range(top + 1))
                     + f" | {avg:.2f} | {100 * above / n:.2f}% ({above} steps) |")
    matched = [r for r in rows if max(r[rule]["match"]["jaccard"] for rule in RULES) >= cut]
    same = [r for r in matched if r["start"]["match"]["split"] == r["overlap"]["match"]["split"]
            and r["start"]["match"]["index"] == r["overlap"]["match"]["index"]]
    mean = {rule: sum(r[rule]["match"]["jaccard"] for r in matched) / max(len(matched), 1) for rule in RULES}
    exact = {rule: sum(r[rule]["match"]["jaccard"] == 1.0 for r in matched) for rule in RULES}
    better = sum(r["start"]["match"]["jaccard"] > r["overlap"]["match"]["jaccard"] for r in matched)
    splits = Counter(r["start"]["match"]["split"] for r in matched)
    lines += [
        "",
        "## Files that are chorales of the data set",
        "",
        f"{len(matched)} of the {len(rows)} files match a sequence of the data set with a Jaccard index of at least "
        f"{cut} (sounding (step, key) cells in common over those in either, the best of the 25 transpositions "
        f"-12..+12, as the data set is transposed; steps past the shorter roll count as 4 unmatched notes); "
        f"the others match nothing in the data set that well (not among its chorales, or another edition or "
        f"harmonisation). Splits: "
        + ", ".join(f"{n} {s}" for s, n in sorted(splits.items())) + f". Both rules find the same sequence for "
        f"{len(same)} of them.",
        "",
        "| rule | mean Jaccard | exact (1.0) | most keys in a step |",
        "|---|---:|---:|---:|",
    ]
    for rule in RULES:
        most = max((r[rule]["keys_max"] for r in matched), default=0)
        lines.append(f"| `{rule}` | {mean[rule]:.3f} | {exact[rule]} | {most} |")
    lines += [
        "",
        f"`start` matches the data set more closely than `overlap` for {better} of the {len(matched)}.",
        "",
        "Command:", "", "```", record.get("command", ""), "```", "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ measure (package)

def _jsb_sequences() -> list[tuple[str, int, Any]] | None:
    """Every sequence of the JSB Chorales data set as (split, index, [T, 88] roll), or None without the data."""
    from rladder_stream.envs.data.music import load_music
    from rladder_stream.envs.data.paths import resolve_data_dir

    if resolve_data_dir(None) is None:
        return None
    data = load_music("JSB Chorales")
    return [(split, i, roll) for split in ("train", "valid", "test") for i, roll in enumerate(data[split])]


def best_match(roll: Any, sequences: list[tuple[str, int, Any]]) -> dict[str, Any]:
    """The data-set sequence closest to ``roll`` shifted by -12..+12 keys: Jaccard index of the sounding
    (step, key) cells, steps past the shorter one counted as 4 unmatched notes; Jaccard 0 and split None when no
    sequence is within 8 steps of its length."""
    import numpy as np

    best: dict[str, Any] = {"jaccard": 0.0, "split": None, "index": None, "shift": 0, "length": None}
    for split, index, seq in sequences:
        if abs(len(seq) - len(roll)) > 8:
            continue
        n = min(len(seq), len(roll))
        for shift in range(-12, 13):
            moved = np.roll(roll[:n], shift, axis=1)
            inter = int((moved & seq[:n]).sum())
            union = int((moved | seq[:n]).sum()) + 4 * abs(len(seq) - len(roll))
            if inter / union > best["jaccard"] or best["split"] is None:
                best = {"jaccard": inter / union, "split": split, "index": index, "shift": shift, "length": len(seq)}
    return best


def _stream(predictor: Any, roll: Any) -> float:
    from rladder_stream.apps.stream_midi import stream_roll

    return stream_roll(predictor, roll).nll_per_step


def measure(folder: Path, model: str | None) -> dict[str, Any]:
    """Stream every MIDI file of ``folder`` and the shipped test chorale under both rules; returns the records."""
    import numpy as np

    from rladder_stream.apps.loading import MUSIC_PRETRAINED, predictor_for
    from rladder_stream.envs.data.midi import midi_to_piano_roll

    predictor, source = predictor_for(model, "torch", shipped=MUSIC_PRETRAINED)
    sequences = _jsb_sequences()
    files = sorted(folder.glob("*.mid"))
    if not files:
        raise SystemExit(f"error: {folder}: no .mid files (write them with `convert {folder}`)")
    rows = []
    shipped = Path(str(resources.files("rladder_stream.envs") / "embedded" / "music" / "jsb_chorale_test0.mid"))
    for path in [shipped] + files:
        row: dict[str, Any] = {"file": path.name, "shipped": path == shipped}
        rolls = {rule: midi_to_piano_roll(path, 1, grid_rule=rule) for rule in RULES}
        for rule, roll in rolls.items():
            keys = roll.sum(1)
            row[rule] = {"steps": len(roll), "nll_per_step": _stream(predictor, roll),
                         "keys_mean": float(keys.mean()), "keys_max": int(keys.max())}
        match = best_match(rolls["start"], sequences) if sequences is not None else {"split": None}
        if match["split"] is not None:  # a chorale of the data set (or the closest one)
            row["match"] = match
            row["start_transposed_nll"] = _stream(predictor, np.roll(rolls["start"], match["shift"], axis=1))
            own = next(seq for split, i, seq in sequences if (split, i) == (match["split"], match["index"]))
            row["data_set_nll"] = _stream(predictor, own)
        rows.append(row)
        print(_line(row), flush=True)
    model_file = source.split(" (")[0]
    return {"model": source.replace(model_file, Path(model_file).name), "rows": rows, "source": _source(folder)}


def _line(row: dict[str, Any]) -> str:
    text = f"{row['file']:<26}" + "".join(
        f"  {rule}: {row[rule]['steps']:3d} steps, NLL {row[rule]['nll_per_step']:6.2f}, "
        f"keys {row[rule]['keys_mean']:.2f} (max {row[rule]['keys_max']})" for rule in RULES)
    if "match" in row:
        m = row["match"]
        text += (f"  | {m['split']}[{m['index']}] shift {m['shift']:+d} J={m['jaccard']:.3f}: transposed "
                 f"{row['start_transposed_nll']:.2f}, data set's own {row['data_set_nll']:.2f}")
    return text


def _mean(rows: list[dict[str, Any]], get: Any) -> float:
    values = [get(r) for r in rows]
    return sum(values) / len(values)


def document(record: dict[str, Any]) -> str:
    """The Markdown document of a ``measure`` record."""
    rows = record["rows"]
    shipped = [r for r in rows if r["shipped"]]
    real = [r for r in rows if not r["shipped"]]
    matched = all("match" in r for r in rows)
    head = "| file | steps | keys/step start (max) | keys/step overlap (max) | NLL start | NLL overlap |"
    rule = "|---|---:|---:|---:|---:|---:|"
    if matched:
        head += " JSB sequence (shift, Jaccard) | NLL start, transposed | NLL data set's own |"
        rule += "---|---:|---:|"

    def cells(r: dict[str, Any], name: str) -> str:
        s, o = r["start"], r["overlap"]
        text = (f"| {name} | {s['steps']} | {s['keys_mean']:.2f} ({s['keys_max']}) | {o['keys_mean']:.2f} "
                f"({o['keys_max']}) | {s['nll_per_step']:.2f} | {o['nll_per_step']:.2f} |")
        if matched:
            m = r["match"]
            text += (f" {m['split']} {m['index']} ({m['shift']:+d}, {m['jaccard']:.3f}) | "
                     f"{r['start_transposed_nll']:.2f} | {r['data_set_nll']:.2f} |")
        return text

    lines = [
        "# Real Bach chorales through the shipped JSB model (issue 28)",
        "",
        f"Model: `{record['model'].split(' (')[0]}`. Every file read on the quarter-note grid "
        "(`steps_per_beat=1`, the JSB data's) under the reader's two rules (`envs/data/midi.py`): `start` (the "
        "default: a key is on in step t when a note sounds at the step's first instant, as the benchmark was "
        "sampled) and `overlap` (the old default: on when a note sounds at any time during the step). NLL per "
        "time step in nats, the field's convention (all T steps, the first from silence), as `rladder-stream "
        "stream-midi` prints it. The real chorales come from music21's corpus, written to MIDI by this script's "
        f"`convert` step ({record.get('source') or 'music21'}; four voices, one track each).",
        "",
        "With the data folder each file is also matched to the data set's chorales (the best Jaccard index of the "
        "sounding (step, key) cells over the 25 transpositions -12..+12: the data set is transposed so that nearly "
        "every chorale ends on C) and streamed again transposed as the data set has it (`NLL start, transposed`), "
        "and the data set's own sequence is streamed (`NLL data set's own`): what the grid explains, what the "
        "key explains, and what is left (the edition)." if matched else "Without the data folder: no matching.",
        "",
        head, rule,
    ]
    lines += [cells(r, f"`{r['file']}` (shipped test chorale)") for r in shipped]
    lines += [cells(r, f"`{r['file']}`") for r in real]
    mean = {
        "start": _mean(real, lambda r: r["start"]["nll_per_step"]),
        "overlap": _mean(real, lambda r: r["overlap"]["nll_per_step"]),
        "keys_start": _mean(real, lambda r: r["start"]["keys_mean"]),
        "keys_overlap": _mean(real, lambda r: r["overlap"]["keys_mean"]),
    }
    summary = (f"| mean of the {len(real)} real chorales | | {mean['keys_start']:.2f} | {mean['keys_overlap']:.2f} "
               f"| {mean['start']:.2f} | {mean['overlap']:.2f} |")
    if matched:
        mean["transposed"] = _mean(real, lambda r: r["start_transposed_nll"])
        mean["own"] = _mean(real, lambda r: r["data_set_nll"])
        summary += f" | {mean['transposed']:.2f} | {mean['own']:.2f} |"
    lines += [summary, ""]
    record["means"] = mean
    text = (f"The {len(real)} real chorales: {mean['overlap']:.2f} nats per step read with `overlap`, "
            f"{mean['start']:.2f} with `start`")
    if matched:
        text += (f", {mean['transposed']:.2f} with `start` and transposed to the data set's key, "
                 f"{mean['own']:.2f} for the data set's own sequences of the same chorales")
    lines += [text + "; the shipped test chorale: "
              + ", ".join(f"{r['start']['nll_per_step']:.2f}" for r in shipped) + ".", ""]
    lines += ["Command:", "", "```", record.get("command", ""), "```", ""]
    return "\n".join(lines)


def _dump(record: dict[str, Any]) -> str:
    """The JSON record, one line a row (the grid record has hundreds)."""
    head = json.dumps({k: v for k, v in record.items() if k != "rows"}, indent=1)
    rows = ",\n".join("  " + json.dumps(row) for row in record["rows"])
    return head[:-2] + ',\n "rows": [\n' + rows + "\n ]\n}\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="write chorales of music21's corpus as MIDI files (needs music21)")
    c.add_argument("out", help="folder for the MIDI files (outside the repository)")
    c.add_argument("--all", action="store_true", help="every four-part chorale of the corpus, not the dozen")
    c.add_argument("--names", nargs="+", metavar="BWV",
                   help=f"these corpus names instead (default: {' '.join(CHORALES)})")
    g = sub.add_parser("grid", help="keys per step and match to the JSB data of the folder's files under both rules")
    g.add_argument("folder", help="folder of .mid files (from `convert --all`)")
    g.add_argument("--doc", help="write this Markdown document and a .json record beside it")
    m = sub.add_parser("measure", help="stream the folder's MIDI files through the model under both rules")
    m.add_argument("folder", help="folder of .mid files (from `convert`)")
    m.add_argument("--model", help="music checkpoint (default: the shipped JSB model)")
    m.add_argument("--doc", help="write this Markdown document and a .json record beside it")
    args = parser.parse_args(argv)
    if args.command == "convert":
        try:
            import music21  # noqa: F401
        except ImportError:
            parser.error("convert needs music21, not a dependency of this package: python3 -m venv /tmp/m21 && "
                         "/tmp/m21/bin/pip install music21, then run this step with /tmp/m21/bin/python")
        names = _corpus_names() if args.all else list(args.names or CHORALES)
        convert(Path(args.out), names)
        return 0
    folder = Path(args.folder)
    if not folder.is_dir():
        parser.error(f"{folder}: no such folder")
    record = grid(folder) if args.command == "grid" else measure(folder, args.model)
    args_given = argv if argv is not None else sys.argv[1:]
    record["command"] = "python experiments/real_chorales.py " + " ".join(shlex.quote(a) for a in args_given)
    if args.doc:
        doc = Path(args.doc)
        text = grid_document(record) if args.command == "grid" else document(record)
        doc.write_text(text)
        doc.with_suffix(".json").write_text(_dump(record))
        print(f"wrote {doc} and {doc.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
