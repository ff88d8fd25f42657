"""One section of a markdown file, replaced in place: each benchmark script owns the section it writes."""

from __future__ import annotations

from pathlib import Path


def replace_section(path: Path, title: str, section: str, preamble: str = "# Benchmarks\n") -> None:
    """Write ``section`` (which starts with the heading line ``title``) over the section of ``path`` that has
    that heading, up to the next ``## `` heading; append it when there is none. Other sections are kept."""
    text = path.read_text() if path.exists() else preamble
    heading = title.rstrip("\n") + "\n"
    if heading in text:
        head, _, tail = text.partition(heading)
        rest = tail.split("\n## ", 1)
        text = head + section + ("\n## " + rest[1] if len(rest) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
