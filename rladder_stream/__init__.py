"""rladder-stream: online inference with Recurrent Ladder networks (RLadder) and RTagger."""

__version__ = "0.1.0"
