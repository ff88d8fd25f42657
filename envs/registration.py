"""The one place the environments are registered with Gymnasium: id, entry point and vector entry point.

Episodes end by termination (fixed lengths, documented per environment), so no ``max_episode_steps``. The entry
points are strings, so registering imports no environment module; :func:`register_envs` is what ``import
rladder_stream.envs`` runs, and what the installed package runs when Gymnasium is imported (see
:mod:`rladder_stream.autoregister`), so ``gym.make("rladder_stream/OccludedMovingMNIST-v0")`` needs no import.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

NAMESPACE = "rladder_stream"
_PACKAGE = __name__.rsplit(".", 1)[0]  # rladder_stream.envs

#: name -> (module, environment class, vector environment class: what gym.make_vec builds by default)
ENVIRONMENTS = {
    "OccludedMovingMNIST-v0": ("occluded_mnist", "OccludedMovingMNISTEnv", "OccludedMovingMNISTVectorEnv"),
    "MovingMNIST-v0": ("moving_mnist", "MovingMNISTEnv", "MovingMNISTVectorEnv"),
    "TexturedMNIST-v0": ("textured_mnist", "TexturedMNISTEnv", "TexturedMNISTVectorEnv"),
    "Shapes-v0": ("shapes", "ShapesEnv", "ShapesVectorEnv"),
    "PolyphonicMusic-v0": ("polyphonic_music", "PolyphonicMusicEnv", "PolyphonicMusicVectorEnv"),
}


def env_ids() -> list[str]:
    """The full ids of this package's environments (``rladder_stream/<name>``)."""
    return [f"{NAMESPACE}/{name}" for name in ENVIRONMENTS]


def register_envs() -> None:
    """Register every environment of the package with Gymnasium (again registering nothing already there)."""
    for name, (module, env_class, vector_class) in ENVIRONMENTS.items():
        env_id = f"{NAMESPACE}/{name}"
        if env_id in registry:
            continue
        register(
            id=env_id,
            entry_point=f"{_PACKAGE}.{module}:{env_class}",
            vector_entry_point=f"{_PACKAGE}.{module}:{vector_class}",
        )
