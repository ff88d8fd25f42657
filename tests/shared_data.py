"""Where the tests find the full data sets (``$RLADDER_STREAM_DATA``, else ``../shared/data`` beside the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def find_shared_data(*subdirs: str) -> Path | None:
    """The first data folder holding every one of ``subdirs`` (default ``mnist``), or None."""
    subdirs = subdirs or ("mnist",)
    for candidate in (os.environ.get("RLADDER_STREAM_DATA"), Path(__file__).resolve().parents[2] / "shared" / "data"):
        if candidate and all((Path(candidate) / s).is_dir() for s in subdirs):
            return Path(candidate)
    return None


def needs_shared(*subdirs: str) -> pytest.MarkDecorator:
    """Skip (with the reason shown) where the full data is absent; CI has it beside the clone."""
    return pytest.mark.skipif(
        find_shared_data(*subdirs) is None,
        reason=f"full data ({', '.join(subdirs or ('mnist',))} in ../shared/data or $RLADDER_STREAM_DATA) absent",
    )
