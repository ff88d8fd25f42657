"""rladder-stream: online inference with Recurrent Ladder networks (RLadder) and RTagger.

The pieces, one module per idea: :mod:`~rladder_stream.config` (named configurations),
:mod:`~rladder_stream.cells` (encoder cells, decoder combinators), :mod:`~rladder_stream.ladder`
(the pure one-tick step), :mod:`~rladder_stream.tagger` (RTagger: grouping with K copies of the step),
:mod:`~rladder_stream.metrics` (AMI), :mod:`~rladder_stream.predictor` (stateful streaming),
:mod:`~rladder_stream.stateless` (SB3-style ``predict(obs, state, episode_start)`` for callers who keep the
state), :mod:`~rladder_stream.checkpoint` (safe save/load), :mod:`~rladder_stream.errors` (the errors a user
can cause, reported by the command line as one line).
"""

__version__ = "0.1.0"

from .checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint  # noqa: E402
from .config import LadderConfig, LevelConfig, get_config, list_configs  # noqa: E402
from .ladder import RLadder, build_model  # noqa: E402
from .outputs import StepOutput, StreamingPredictor  # noqa: E402
from .predictor import Predictor  # noqa: E402
from .stateless import StatelessPredictor  # noqa: E402
from .tagger import RTagger  # noqa: E402

__all__ = [
    "__version__",
    "CheckpointError",
    "LadderConfig",
    "LevelConfig",
    "Predictor",
    "RLadder",
    "RTagger",
    "StatelessPredictor",
    "StepOutput",
    "StreamingPredictor",
    "build_model",
    "get_config",
    "list_configs",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
]
