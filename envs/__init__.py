"""Streaming prediction environments (Gymnasium) for rladder-stream.

Importing this package registers the environments (ids under the ``rladder_stream/`` namespace)::

    import gymnasium as gym
    import envs  # noqa: F401  (registers the ids)
    env = gym.make("rladder_stream/OccludedMovingMNIST-v0", split="test")
    vec = gym.make_vec("rladder_stream/OccludedMovingMNIST-v0", num_envs=256, vectorization_mode="vector_entry_point")

Episodes end by termination (fixed lengths, documented per environment), so no ``max_episode_steps``.
``vectorization_mode="vector_entry_point"`` (the default) builds one batched environment on the generator;
``"sync"``/``"async"`` wrap single environments, and for the digit environments with class beliefs they
need the dict action form (Gymnasium splits batched actions by the Dict action space).
"""

from gymnasium.envs.registration import register

register(
    id="rladder_stream/OccludedMovingMNIST-v0",
    entry_point="envs.occluded_mnist:OccludedMovingMNISTEnv",
    vector_entry_point="envs.occluded_mnist:OccludedMovingMNISTVectorEnv",
)
register(
    id="rladder_stream/MovingMNIST-v0",
    entry_point="envs.moving_mnist:MovingMNISTEnv",
    vector_entry_point="envs.moving_mnist:MovingMNISTVectorEnv",
)
register(
    id="rladder_stream/TexturedMNIST-v0",
    entry_point="envs.textured_mnist:TexturedMNISTEnv",
    vector_entry_point="envs.textured_mnist:TexturedMNISTVectorEnv",
)
register(
    id="rladder_stream/Shapes-v0",
    entry_point="envs.shapes:ShapesEnv",
    vector_entry_point="envs.shapes:ShapesVectorEnv",
)
# Polyphonic music (envs/polyphonic_music.py) registers below.
register(
    id="rladder_stream/PolyphonicMusic-v0",
    entry_point="envs.polyphonic_music:PolyphonicMusicEnv",
)
