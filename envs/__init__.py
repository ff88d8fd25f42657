"""Streaming prediction environments (Gymnasium) for rladder-stream: a leaf that imports numpy, Gymnasium,
Pillow and mido, and nothing else of the project.

Installed, the environments are registered whenever Gymnasium is imported; importing this package registers
them too (ids under the ``rladder_stream/`` namespace)::

    import gymnasium as gym
    env = gym.make("rladder_stream/OccludedMovingMNIST-v0", split="test")
    vec = gym.make_vec("rladder_stream/OccludedMovingMNIST-v0", num_envs=256, vectorization_mode="vector_entry_point")

``vectorization_mode="vector_entry_point"`` (the default) builds one batched environment on the generator;
``"sync"``/``"async"`` wrap single environments, and for the digit environments with class beliefs they
need the dict action form (Gymnasium splits batched actions by the Dict action space).
"""

from .registration import env_ids, register_envs

register_envs()

__all__ = ["env_ids", "register_envs"]
