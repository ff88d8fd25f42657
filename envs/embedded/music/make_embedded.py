"""Regenerate the embedded music excerpt: ``python envs/embedded/music/make_embedded.py [DATA_DIR]``.

Writes, next to this script:

* ``jsb_chorales_excerpt.npz``: the first 12 train, 4 valid and 4 test sequences of JSB Chorales (Bach chorale
  harmonisations, public domain; splits of Boulanger-Lewandowski et al. 2012), read from the checksummed
  ``JSB_Chorales.mat`` in ``DATA_DIR/music`` (default: ``$RLADDER_STREAM_DATA`` or the project's shared data
  folder). Rows are bit-packed (``np.packbits``), one ``<split>_lengths`` array per split; the zip entries have
  fixed timestamps, so a re-run writes the same bytes.
* ``jsb_chorale_test0.mid``: the first test sequence as a type-0 MIDI file, one step a quarter note (480 ticks
  at 480 ticks per beat, 120 BPM) as in the data set, a short piece to try ``rladder-stream stream-midi`` on
  (read it back with ``midi_to_piano_roll(path, steps_per_beat=1)``).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from rladder_stream.envs.data.midi import piano_roll_to_midi
from rladder_stream.envs.data.music import DATASETS, SPLITS, read_music_mat, write_embedded
from rladder_stream.envs.data.paths import verify

COUNTS = {"train": 12, "valid": 4, "test": 4}


def main(argv: list[str]) -> None:
    here = Path(__file__).resolve().parent
    default = os.environ.get("RLADDER_STREAM_DATA") or here.parents[3] / "shared" / "data"
    data_dir = Path(argv[0]) if argv else Path(default)
    info = DATASETS["JSB Chorales"]
    splits = read_music_mat(verify(data_dir / "music" / info.mat_file, info.mat_sha256))
    excerpt = {split: splits[split][: COUNTS[split]] for split in SPLITS}
    out = write_embedded(excerpt, here / "jsb_chorales_excerpt.npz")
    midi = piano_roll_to_midi(excerpt["test"][0], here / "jsb_chorale_test0.mid", steps_per_beat=1)  # quarter notes
    for path in (out, midi):
        print(f"{path.name}: {path.stat().st_size} bytes, sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main(sys.argv[1:])
