"""Streaming prediction environments (Gymnasium) for rladder-stream."""
