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
from .loading import add_runtime_argument, describe_model_file, predictor_for

#: what ``rladder-stream --help`` says first
DESCRIPTION = """\
Recurrent Ladder networks that stream: a model reads one observation per tick (a video frame, a step of a piano
roll), keeps what it learned so far in its state, and at every tick forecasts the next observation and, for digits,
says which digit it believes it sees. The commands stream the pretrained models that come with the package (demo,
stream-midi, figure4), score models in the package's environments (benchmark), train models and reproduce the
paper's tables (train, reproduce), and inspect or convert model files (info, export, configs). Every command has
its own help: rladder-stream COMMAND --help."""

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
        description="Export the model of a checkpoint to an ONNX file, for ONNX Runtime or any other program that runs "
                    "ONNX. The file holds one tick of the model: it takes an observation and the model's state and gives "
                    "the forecast, the class beliefs and the next state, for any number of streams at once. It also "
                    "holds the model's configuration and a checksum, so 'rladder-stream info' can describe it and every "
                    "command's --model option can stream it.",
        examples=["rladder-stream export runs/omm/last.pt omm.onnx",
                  "rladder-stream demo --model omm.onnx"],
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="the checkpoint (.pt) to export, e.g. a run folder's last.pt")
    parser.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write (its folder is created)")
    parser.add_argument("--opset", type=int, default=None,
                        help=f"the ONNX operator set version, {MIN_OPSET} to {max_opset()}; older ONNX Runtimes need lower "
                             f"ones (default {DEFAULT_OPSET})")
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
    parser = OneLineArgumentParser(prog="rladder-stream", description=DESCRIPTION,
                                   examples=["rladder-stream demo", "rladder-stream stream-midi song.mid --continue 32",
                                             "rladder-stream train omm-rladder --set size=tiny epochs=1 --out runs/try"])
    parser.add_argument("--version", action="version", version=f"rladder-stream {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineArgumentParser, title="commands",
                                metavar="COMMAND", help="one of these, each with its own --help:")

    demo = sub.add_parser(
        "demo", help="stream a pretrained RLadder through Occluded Moving MNIST (start here)",
        description="Stream a pretrained RLadder through Occluded Moving MNIST: a handwritten digit moves behind bars "
                    "that hide parts of it, one frame per tick. At every tick the model forecasts the next frame and "
                    "says which digit it believes it sees. The command prints those beliefs and how likely the model "
                    "found each frame, then the classification error and the speed, and draws the episodes as an "
                    "animation (demo.gif) and a picture (demo.png).",
        examples=["rladder-stream demo", "rladder-stream demo --episodes 10 --out my_demo",
                  "rladder-stream demo --model runs/omm/last.pt --runtime onnx"])
    demo.add_argument("--model", help="the model file to stream: a checkpoint (.pt) or an exported ONNX step (.onnx) "
                                      "(default: the pretrained model that comes with the package)")
    demo.add_argument("--episodes", type=int, default=3, help="how many test episodes (moving digits) to stream")
    demo.add_argument("--seed", type=int, default=0,
                      help="seed of the environment's random numbers (and of the untrained stand-in model streamed "
                           "when no pretrained model is installed)")
    demo.add_argument("--data-dir", default=None, help="folder with the MNIST data (default: $RLADDER_STREAM_DATA, "
                                                       "else the test digits that come with the package)")
    demo.add_argument("--out", default="demo_out", help="folder to write demo.gif and demo.png into")
    add_runtime_argument(demo)
    demo.set_defaults(func=cmd_demo)

    configs = sub.add_parser(
        "configs", help="list the model configurations that can be trained",
        description="List the registered model configurations (the names 'rladder-stream train' takes) with their "
                    "number of parameters at --size and what each is: the RLadder of each task, its baselines and "
                    "ablations, the RTaggers.",
        examples=["rladder-stream configs", "rladder-stream configs --size gpu"])
    configs.add_argument("--size", default="cpu", choices=["tiny", "cpu", "gpu"],
                         help="model size to count the parameters of: tiny (seconds to train, for tests), cpu (hours on a "
                              "laptop), gpu (the paper's)")
    configs.set_defaults(func=cmd_configs)

    info = sub.add_parser(
        "info", help="describe a checkpoint or an exported .onnx step (verified)",
        description="Describe a model file, a checkpoint (.pt) or an exported ONNX step (.onnx), after checking it the "
                    "way loading does (format, checksum, configuration against the stored weights). Prints JSON: the "
                    "format, the model's configuration and size, and what else the file holds.",
        examples=["rladder-stream info runs/omm/last.pt", "rladder-stream info omm.onnx"])
    info.add_argument("checkpoint", metavar="FILE", help="the model file: a checkpoint (.pt) or an exported ONNX step (.onnx)")
    info.set_defaults(func=cmd_info)

    for name, text in (("benchmark", "score a model or a baseline in one of the package's environments"),
                       ("train", "train a model configuration, or resume a run"),
                       ("reproduce", "reproduce a table of the paper, e.g. 'reproduce table1'"),
                       ("figure4", "draw the paper's Figure 4 (what the model sees, forecasts and reads) as PNG and GIF"),
                       ("groups", "draw how an RTagger splits images into groups (the paper's Figures 6 and 7)"),
                       ("export", "export a checkpoint's model to an ONNX file"),
                       ("stream-midi", "stream a MIDI file through a music model and let it continue the piece")):
        sub.add_parser(name, help=text, add_help=False)  # their own parsers answer 'rladder-stream NAME --help'
    return parser


def _run_delegated(name: str, argv: list[str]) -> int:
    """Run a subcommand that has its own argument parser, importing only its module."""
    module, function = DELEGATED[name].split(":")
    return int(getattr(importlib.import_module(module), function)(argv) or 0)


#: the exit status when standard output is a pipe closed early (``rladder-stream info FILE | head``): the shell's
#: for a process that SIGPIPE ended, 128 + 13, as ``cat`` or ``grep`` would give
BROKEN_PIPE_STATUS = 141


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a user's mistake is one ``error: ...`` line on stderr and exit status 1 (argument
    syntax: 2), a bug keeps its traceback (``RLADDER_STREAM_DEBUG=1`` shows it for user errors too). Output into
    a pipe that closes early (``| head``) ends the command quietly with :data:`BROKEN_PIPE_STATUS`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            return _run(argv)
        except user_errors() as exc:
            if os.environ.get("RLADDER_STREAM_DEBUG"):
                raise
            return report(exc)
        finally:  # --help's SystemExit too: a pipe closed early must fail here, not at interpreter exit
            sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)  # what is still buffered goes nowhere, not into a second error
        os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE_STATUS


def _run(argv: list[str]) -> int:
    """Parse the command line and run the command it names."""
    if argv and argv[0] in DELEGATED:
        return _run_delegated(argv[0], argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "episodes", 1) < 1:
        parser.error("--episodes must be >= 1")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
