"""Score any predictor in any environment of the package with the one streaming loop of
docs/design.md#the-environments-contract (:func:`~rladder_stream.streaming.episode.play_episode`), and print a
table.

    >>> from rladder_stream.apps.benchmark import benchmark, format_table
    >>> from rladder_stream.streaming.baselines import RepeatLastPredictor
    >>> result = benchmark("rladder_stream/PolyphonicMusic-v0", RepeatLastPredictor((88,)), 4, dataset="embedded")
    >>> print(format_table([result]))  # doctest: +SKIP

Metrics (each over every ``env.step`` of every episode):

* reward per episode: mean and standard deviation over episodes (a sum of Bernoulli log-likelihoods);
* NLL per step: ``-(sum of rewards) / (number of env.step calls)``, in nats. For music this is the NLL per
  time step over the scored steps (see ``PolyphonicMusicEnv`` for which steps are scored);
* MSE per pixel: the mean over steps of the mean squared difference between the forecast and the observation
  that followed it (docs/design.md#occluded-moving-mnist "prediction error");
* classification error %: where the final ``info`` of an episode has ``class_correct``;
* AMI: where the predictor's output has ``groups`` (``(K, *obs_shape)``) and the ``info`` that comes with the
  *next* observation has ``groups`` (int, -1 = ignore): an RTagger's groups on video are those of the frame it
  forecasts (on a static image every tick has the same groups); docs/design.md#ami, max normalisation, leaving out
  the groups the environment's ``ami_ignore`` names (default -1; Moving MNIST also the background), averaged
  over every such tick;
* ticks per second: ``env.step`` calls per second of wall time, predictor and environment together.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np

import rladder_stream.envs  # noqa: F401  (registers the environments)

from ..arguments import OneLineArgumentParser
from ..streaming.baselines import MarginalPredictor, RepeatLastPredictor
from ..streaming.episode import play_episode
from ..training.metrics import grouping_ami
from .boundary import check_fits, make_env, own_environments
from .loading import add_runtime_argument, load_predictor

__all__ = ["BenchmarkResult", "benchmark", "format_table", "benchmark_cli_main"]


@dataclass
class BenchmarkResult:
    """What :func:`benchmark` measured; ``None`` where the environment or predictor offers no such metric."""

    env_id: str
    predictor: str
    n_episodes: int
    n_steps: int
    mean_reward: float
    std_reward: float
    nll_per_step: float
    mse_per_pixel: float | None
    class_error_pct: float | None
    ami: float | None
    ticks_per_s: float
    seconds: float
    episode_rewards: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _name(predictor: Any) -> str:
    return str(getattr(predictor, "name", type(predictor).__name__))


def benchmark(
    env_id_or_env: str | gym.Env,
    predictor: Any,
    n_episodes: int,
    seed: int = 0,
    **env_kwargs: Any,
) -> BenchmarkResult:
    """Run ``n_episodes`` episodes of the one streaming loop of docs/design.md#the-environments-contract
    (:func:`~rladder_stream.streaming.episode.play_episode`; a predictor without a forecast is scored on the
    uninformative one) and measure (see the module docstring).

    The first ``reset`` gets ``seed``, later ones continue from there (for the music and fixed valid/test
    digit splits: episodes 0, 1, 2, ... of the split in order). ``predictor`` follows
    :class:`rladder_stream.streaming.outputs.StreamingPredictor` with one stream. An environment given as an id is made
    with ``env_kwargs`` and closed at the end.
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    own = isinstance(env_id_or_env, str)
    if not own and env_kwargs:
        raise ValueError("env_kwargs apply only when the environment is given by id")
    env = gym.make(env_id_or_env, **env_kwargs) if own else env_id_or_env
    env_id = env_id_or_env if own else (env.spec.id if env.spec is not None else type(env.unwrapped).__name__)
    rewards: list[float] = []
    n_steps = 0
    sq_err_sum, n_mse = 0.0, 0
    correct: list[bool] = []
    amis: list[float] = []
    ami_ignore = getattr(env.unwrapped, "ami_ignore", (-1,))
    start = time.perf_counter()
    try:
        for episode in range(n_episodes):
            total = 0.0
            for tick in play_episode(predictor, env, seed=seed if episode == 0 else None):
                if tick.out.groups is not None and "groups" in tick.info:  # the groups of the frame the output forecasts
                    score = grouping_ami(tick.info["groups"], tick.out.groups, ami_ignore)
                    if score is not None:
                        amis.append(score)
                total += float(tick.reward)
                n_steps += 1
                if np.shape(tick.forecast) == np.shape(tick.next_obs):
                    diff = np.asarray(tick.forecast, np.float64) - np.asarray(tick.next_obs, np.float64)
                    sq_err_sum += float(np.mean(diff * diff))
                    n_mse += 1
                if tick.last and "class_correct" in tick.info:
                    correct.append(bool(tick.info["class_correct"]))
            rewards.append(total)
    finally:
        if own:
            env.close()
    seconds = time.perf_counter() - start
    r = np.asarray(rewards)
    return BenchmarkResult(
        env_id=str(env_id),
        predictor=_name(predictor),
        n_episodes=n_episodes,
        n_steps=n_steps,
        mean_reward=float(r.mean()),
        std_reward=float(r.std()),
        nll_per_step=-float(r.sum()) / max(n_steps, 1),
        mse_per_pixel=sq_err_sum / n_mse if n_mse else None,
        class_error_pct=100.0 * (1.0 - float(np.mean(correct))) if correct else None,
        ami=float(np.mean(amis)) if amis else None,
        ticks_per_s=n_steps / seconds if seconds > 0 else math.inf,
        seconds=seconds,
        episode_rewards=rewards,
    )


def format_table(results: Sequence[BenchmarkResult]) -> str:
    """A Markdown table of results, one row each; ``-`` where a metric does not apply."""
    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    head = ["env", "predictor", "episodes", "steps", "reward/episode", "NLL/step", "MSE/pixel",
            "class err %", "AMI", "ticks/s"]
    rows = [
        [r.env_id, r.predictor, str(r.n_episodes), str(r.n_steps), f"{r.mean_reward:.2f} ± {r.std_reward:.2f}",
         f"{r.nll_per_step:.4f}", num(r.mse_per_pixel, ".5f"), num(r.class_error_pct, ".2f"), num(r.ami, ".4f"),
         f"{r.ticks_per_s:.0f}"]
        for r in results
    ]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def _parse_kwarg(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a bare string such as dataset=Nottingham


def _env_id(name: str) -> str:
    return name if "/" in name or name in gym.registry else f"rladder_stream/{name}"


def benchmark_cli_main(
    argv: Sequence[str] | None = None,
    load_checkpoint: Callable[[str], Any] | None = None,
) -> int:
    """``rladder-stream benchmark ENV [--predictor repeat|marginal|CKPT] [--episodes N] [--env-arg K=V ...]``.

    ``--predictor marginal`` fits the marginal on ``--fit-episodes`` episodes of the ``--fit-split`` split
    (default: one pass over the training split where the environment has a fixed number of sequences).
    Any other value is a checkpoint (``.pt``) or exported step (``.onnx``), loaded with ``load_checkpoint(path)``
    (default :func:`rladder_stream.load_predictor` on ``--runtime``). Prints the table (or JSON with ``--json``);
    returns the exit status.
    """
    parser = OneLineArgumentParser(
        prog="rladder-stream benchmark",
        description="Score a predictor in one of the package's environments: it streams --episodes episodes, one "
                    "observation per tick, and the command prints a table of the reward per episode, the negative "
                    "log-likelihood (NLL) per step, the mean squared error of the forecasts per pixel, and, where the "
                    "environment has them, the classification error and the grouping score (AMI), with the ticks per "
                    "second. The predictor is a model file or a baseline: repeat (forecast that the last observation "
                    "comes again) or marginal (forecast each pixel's or key's frequency in the training data).",
        examples=["rladder-stream benchmark OccludedMovingMNIST-v0 --predictor runs/omm/last.pt --episodes 100",
                  "rladder-stream benchmark PolyphonicMusic-v0 --env-arg dataset=jsb --predictor marginal",
                  "rladder-stream benchmark MovingMNIST-v0 --predictor repeat --json"],
    )
    parser.add_argument("env", help=f"the environment: {', '.join(own_environments())} (the rladder_stream/ prefix "
                                    "may be left out)")
    parser.add_argument("--predictor", default="repeat",
                        help="what forecasts: repeat, marginal, or a model file (a checkpoint .pt or an exported .onnx)")
    parser.add_argument("--episodes", type=int, default=10, help="how many episodes to stream")
    parser.add_argument("--seed", type=int, default=0, help="seed of the episodes and of the marginal baseline's fit")
    parser.add_argument("--env-arg", action="append", type=_parse_kwarg, default=[], metavar="KEY=VALUE",
                        help="an argument of the environment, e.g. split=valid, dataset=nottingham or data_dir=DIR (a "
                             "Python literal or a bare string); repeat the option for several")
    parser.add_argument("--eps", type=float, default=0.01,
                        help="repeat: the forecast probabilities are kept this far from 0 and 1")
    parser.add_argument("--fit-split", default="train", help="marginal: the split whose frequencies it forecasts")
    parser.add_argument("--fit-episodes", type=int, default=None,
                        help="marginal: how many episodes of --fit-split to count (default: the whole split where it "
                             "has a fixed size; needed otherwise)")
    add_runtime_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the result as one line of JSON instead of a table")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")

    env_id = _env_id(args.env)
    env_kwargs = dict(args.env_arg)
    env = make_env(env_id, **env_kwargs)
    obs_shape = env.observation_space.shape
    if args.predictor == "repeat":
        predictor = RepeatLastPredictor(obs_shape, eps=args.eps)
    elif args.predictor == "marginal":
        fit_kwargs = {**env_kwargs, "split": args.fit_split}
        fit_env = make_env(env_id, **fit_kwargs)  # a bad --fit-split is the user's mistake: one line
        if args.fit_episodes is None and getattr(fit_env.unwrapped, "n_sequences", None) is None:
            parser.error(f"--predictor marginal on {env_id} needs --fit-episodes N (no fixed number of training sequences)")
        try:
            predictor = MarginalPredictor.from_env(fit_env, args.fit_episodes, seed=args.seed)
        finally:
            fit_env.close()
    else:
        if load_checkpoint is None:
            predictor = load_predictor(args.predictor, args.runtime)
        else:
            predictor = load_checkpoint(args.predictor)
        check_fits(predictor, env, args.predictor)
    try:
        result = benchmark(env, predictor, args.episodes, seed=args.seed)
    finally:
        env.close()
    result.env_id = env_id
    if args.predictor not in ("repeat", "marginal"):
        result.predictor = args.predictor
    if args.json:
        print(json.dumps({k: v for k, v in result.as_dict().items() if k != "episode_rewards"}))
    else:
        print(format_table([result]))
    return 0
