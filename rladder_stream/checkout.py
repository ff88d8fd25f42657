"""Running from a source checkout that is not installed (``PYTHONPATH=.``, ``python -m rladder_stream`` in the
clone): the repository's top-level ``envs/`` and ``export/`` folders become importable as ``rladder_stream.envs``
and ``rladder_stream.export``, the names an installation gives them (``package-dir`` in pyproject.toml).

An installed package holds ``envs/`` and ``export/`` inside its own folder, and nothing here applies.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path

#: Subpackage of ``rladder_stream`` -> its folder at the repository's root.
SOURCE_FOLDERS = {"envs": "envs", "export": "export"}


class SourceFolderFinder(importlib.abc.MetaPathFinder):
    """Finds ``rladder_stream.envs`` and ``rladder_stream.export`` in the repository's root folders; their
    submodules are then found the ordinary way, in the folder."""

    def __init__(self, package: str, root: Path):
        self.folders = {f"{package}.{name}": root / folder for name, folder in SOURCE_FOLDERS.items()}

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        folder = self.folders.get(fullname)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(fullname, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])


def use_source_folders(package: str, package_dir: Path) -> bool:
    """Install the finder when ``package_dir`` sits in a checkout (the root folders exist, the package has no
    copies of them); returns whether it did."""
    root = package_dir.parent
    in_checkout = (root / "pyproject.toml").is_file() and all(
        (root / folder / "__init__.py").is_file() and not (package_dir / name).exists() for name, folder in SOURCE_FOLDERS.items()
    )
    if not in_checkout:
        return False
    if not any(isinstance(finder, SourceFolderFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, SourceFolderFinder(package, root))
    return True
