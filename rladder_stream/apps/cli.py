"""The ``rladder-stream`` command line: ``demo`` (the main job), ``train``, ``reproduce``, ``figure4``, ``benchmark``,
``stream-midi``, ``configs``, ``info``, ``export``."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..arguments import OneLineArgumentParser
from ..export.onnx import DEFAULT_OPSET, META_PREFIX, MIN_OPSET, export_onnx, max_opset
from ..streaming.checkpoint import load_checkpoint
from ..version import __version__
from .boundary import check_fits, make_env, report, user_errors
from .loading import describe_model_file, predictor_for

# Subcommands with their own parsers: name -> "module:function(argv)".
DELEGATED = {
    "benchmark": "rladder_stream.apps.benchmark:benchmark_cli_main",
    "train": "rladder_stream.training.train:train_cli_main",
    "reproduce": "rladder_stream.reproduce:reproduce_cli_main",
    "figure4": "rladder_stream.apps.figures:figure4_cli_main",
    "groups": "rladder_stream.apps.figures:groups_cli_main",
    "export": "rladder_stream.apps.cli:export_cli_main",
    "stream-midi": "rladder_stream.apps.stream_midi:stream_midi_cli_main",
}


def cmd_demo(args: argparse.Namespace) -> int:
    """Stream a (pretrained) RLadder through Occluded Moving MNIST, print beliefs per tick, write a GIF."""
    from .figures import demo_figure, demo_frames, record_episode, save_gif

    predictor, source = predictor_for(args.model, args.runtime, untrained="omm-rladder", seed=args.seed)
    env = make_env("rladder_stream/OccludedMovingMNIST-v0", split="test", data_dir=args.data_dir)
    check_fits(predictor, env, args.model or "the shipped model")
    print(f"model: {source}\nenvironment: OccludedMovingMNIST-v0, test split, {args.episodes} episode(s)\n"
          "log-lik: the log-likelihood of the next frame under the model's forecast, in nats (higher is better)\n")
    correct, total_reward, ticks, records = 0, 0.0, 0, []
    start = time.perf_counter()
    env.reset(seed=args.seed)
    for episode in range(args.episodes):
        record = record_episode(predictor, env, index=episode)  # the one streaming loop, test episode `episode`
        records.append(record)
        for t, (probs, reward) in enumerate(zip(record.class_probs, record.rewards)):
            top = np.argsort(probs)[::-1][:3]
            beliefs = "  ".join(f"{k}:{probs[k]:.2f}" for k in top)
            print(f"episode {episode} tick {t}: beliefs {beliefs}   log-lik of next frame {reward:8.2f}")
        ticks += len(record.rewards)
        total_reward += float(record.rewards.sum())
        guess = int(np.argmax(record.class_probs[-1]))
        correct += guess == record.label
        print(f"episode {episode}: label {record.label}, predicted {guess} {'(correct)' if guess == record.label else '(wrong)'}\n")
    elapsed = time.perf_counter() - start
    print(f"classification error {100 * (1 - correct / args.episodes):.1f}% over {args.episodes} episode(s); "
          f"mean log-likelihood per frame {total_reward / ticks:.2f} (higher is better); {ticks / elapsed:.0f} ticks/s")
    from rladder_stream.envs.occluded_mnist import OCCLUDED

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = Path(source.split(" (")[0]).name
    title = f"{name} streaming OccludedMovingMNIST-v0 (test split)"
    gif = save_gif(demo_frames(records, title, OCCLUDED), out_dir / "demo.gif", ms_per_frame=900)
    demo_figure(records, title, OCCLUDED).save(out_dir / "demo.png")
    print(f"wrote {gif} and {out_dir / 'demo.png'}")
    return 0


def cmd_configs(args: argparse.Namespace) -> int:
    """List the registered configurations with their parameter counts."""
    from ..model.registry import build_model, get_config, list_configs

    print(f"{'name':32s} {'params':>10s}  description")
    for name, description in sorted(list_configs().items()):
        params = build_model(get_config(name, size=args.size)).num_parameters()
        print(f"{name:32s} {params:10,d}  {description}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Describe a checkpoint or an exported ONNX step (verified the way loading verifies it)."""
    print(json.dumps(describe_model_file(Path(args.checkpoint)), indent=2))
    return 0


def export_cli_main(argv: Sequence[str] | None = None) -> int:
    """``rladder-stream export CKPT out.onnx [--opset N]``: export a checkpoint's one-tick step to ONNX."""
    parser = OneLineArgumentParser(
        prog="rladder-stream export",
        description="Export the one-tick step of a checkpoint's model to ONNX (state as named inputs/outputs, dynamic batch).",
    )
    parser.add_argument("checkpoint", help="rladder-stream checkpoint (.pt)")
    parser.add_argument("out", help="ONNX file to write")
    parser.add_argument("--opset", type=int, default=None, help=f"ONNX opset, {MIN_OPSET}..{max_opset()} (default {DEFAULT_OPSET})")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.opset is not None and not MIN_OPSET <= args.opset <= max_opset():
        parser.error(f"--opset must be in {MIN_OPSET}..{max_opset()}, got {args.opset}")
    try:
        load_checkpoint(args.checkpoint)  # a bad file is said in one line, before the wait
        print(f"exporting {args.checkpoint} to ONNX (takes 5-20 s) ...", file=sys.stderr, flush=True)
        path = export_onnx(args.checkpoint, args.out, opset=args.opset)
    except user_errors() as exc:  # a missing or bad checkpoint: one line; an exporter failure is a bug (traceback)
        return report(exc)
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    meta = {p.key[len(META_PREFIX):]: p.value for p in proto.metadata_props if p.key.startswith(META_PREFIX)}
    config = json.loads(meta["config"])
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB): {meta['model_kind']} '{config['name']}', "
          f"opset {opset}, IR version {proto.ir_version}")
    print(f"inputs:  {', '.join(json.loads(meta['inputs']))}")
    print(f"outputs: {', '.join(json.loads(meta['outputs']))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="rladder-stream", description=__doc__)
    parser.add_argument("--version", action="version", version=f"rladder-stream {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineArgumentParser)

    demo = sub.add_parser("demo", help="stream a pretrained RLadder through Occluded Moving MNIST (the main job)")
    demo.add_argument("--model", help="checkpoint or exported .onnx step to stream (default: the shipped pretrained model)")
    demo.add_argument("--episodes", type=int, default=3, help="number of test episodes (default 3)")
    demo.add_argument("--seed", type=int, default=0, help="seed for the environment (default 0)")
    demo.add_argument("--data-dir", default=None, help="data folder (default: $RLADDER_STREAM_DATA or the embedded test digits)")
    demo.add_argument("--out", default="demo_out", help="folder for demo.gif and demo.png (default demo_out)")
    demo.add_argument("--runtime", choices=["auto", "torch", "onnx"], default="auto",
                      help="step a checkpoint with PyTorch (default) or ONNX Runtime (exported once, then cached); "
                           "an .onnx file always runs on ONNX Runtime")
    demo.set_defaults(func=cmd_demo)

    configs = sub.add_parser("configs", help="list the named model configurations")
    configs.add_argument("--size", default="cpu", choices=["tiny", "cpu", "gpu"])
    configs.set_defaults(func=cmd_configs)

    info = sub.add_parser("info", help="describe a checkpoint or an exported .onnx step (verified)")
    info.add_argument("checkpoint", help="a checkpoint (.pt) or an exported step (.onnx)")
    info.set_defaults(func=cmd_info)

    sub.add_parser("benchmark", help="benchmark predictors in environments (see 'rladder-stream benchmark --help')", add_help=False)
    sub.add_parser("train", help="train a configuration (see 'rladder-stream train --help')", add_help=False)
    sub.add_parser("reproduce", help="reproduce a table of the paper, e.g. 'reproduce table1' (see 'rladder-stream reproduce --help')", add_help=False)
    sub.add_parser("figure4", help="the paper's Figure 4 (with probe) as PNG and GIF (see 'rladder-stream figure4 --help')", add_help=False)
    sub.add_parser("groups", help="an RTagger's groupings as the paper's Figure 6 / 7 (see 'rladder-stream groups --help')", add_help=False)
    sub.add_parser("export", help="export a checkpoint's one-tick step to ONNX: CKPT out.onnx [--opset N]", add_help=False)
    sub.add_parser("stream-midi", help="stream a MIDI file through a music model, print per-step NLL, write a continuation "
                   "(see 'rladder-stream stream-midi --help')", add_help=False)
    return parser


def _run_delegated(name: str, argv: list[str]) -> int:
    """Run a subcommand that has its own argument parser, importing only its module."""
    module, function = DELEGATED[name].split(":")
    return int(getattr(importlib.import_module(module), function)(argv) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a user's mistake is one ``error: ...`` line on stderr and exit status 1 (argument
    syntax: 2), a bug keeps its traceback (``RLADDER_STREAM_DEBUG=1`` shows it for user errors too)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in DELEGATED:
            return _run_delegated(argv[0], argv[1:])
        parser = build_parser()
        args = parser.parse_args(argv)
        if getattr(args, "episodes", 1) < 1:
            parser.error("--episodes must be >= 1")
        return int(args.func(args) or 0)
    except user_errors() as exc:
        if os.environ.get("RLADDER_STREAM_DEBUG"):
            raise
        return report(exc)


if __name__ == "__main__":
    sys.exit(main())
