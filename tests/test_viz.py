"""The probe output and the paper's Figure 4 (picture, GIF, command)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from PIL import Image

import rladder_stream.envs  # noqa: F401  (registers the environments)
from rladder_stream import Predictor, build_model, get_config
from rladder_stream.apps.cli import main as cli_main
from shared_data import find_shared_data, needs_shared
from rladder_stream.apps.figures import (FIG4_ROWS, FORECAST_FLOOR, build_figure4, figure4, figure4_frames, figure4_title,
                                         record_episode)
from rladder_stream.envs.occluded_mnist import OCCLUDED

SCALE = 2


def _predictor(name: str = "omm-rladder") -> Predictor:
    torch.manual_seed(0)
    model = build_model(get_config(name, size="tiny"))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return Predictor(model)


def _test_env():
    return gym.make("rladder_stream/OccludedMovingMNIST-v0", split="test")


def test_probe_output_is_the_sigmoid_of_the_probe_logits(embedded_data):
    predictor = _predictor()
    frame = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    state = predictor.model.init_state(1)
    out = predictor.step(frame)
    assert out.probe.shape == (32, 32) and out.probe.dtype == np.float32
    assert ((out.probe >= 0) & (out.probe <= 1)).all() and out.probe.std() > 0
    with torch.no_grad():
        logits = predictor.model.step(torch.as_tensor(frame)[None], state)[0]["probe_logits"]
    np.testing.assert_allclose(out.probe, torch.sigmoid(logits)[0].numpy(), atol=1e-6)
    assert _predictor("omm-rladder-no-d2e").step(frame).probe is None  # a model without a probe has none


def _grid(fig, n_rows: int, n_cols: int = 6) -> np.ndarray:
    """Figure 4's axes, one per cell (empty cells included), row by row."""
    assert len(fig.axes) == n_rows * n_cols
    return np.asarray(fig.axes).reshape(n_rows, n_cols)


def _legend_text(fig) -> str:
    return " | ".join(t.get_text() for lg in fig.legends for t in lg.get_texts())


def _orange(image) -> int:
    """How many pixels have the colour of the occluding bars drawn at 45 % over white."""
    rgb = np.asarray(image).astype(int)
    return int(((abs(rgb[..., 0] - 249) < 8) & (abs(rgb[..., 1] - 204) < 12) & (abs(rgb[..., 2] - 159) < 14)).sum())


def test_figure4_has_every_panel_in_place_dark_on_white(embedded_data):
    episode = record_episode(_predictor(), _test_env(), index=2)
    assert episode.clean.shape == episode.observed.shape == (6, 32, 32)
    assert episode.predicted.shape == episode.probe.shape == (5, 32, 32)
    assert ((episode.probe >= 0) & (episode.probe <= 1)).all()
    assert episode.class_probs.shape == (5, 10) and episode.index == 2 and 0 <= episode.label <= 9

    fig = build_figure4(episode, scale=SCALE, occluder=OCCLUDED)
    grid = _grid(fig, 4)  # 4 rows x 6 columns
    rows = {0: episode.clean, 1: episode.observed, 2: [None, *episode.predicted], 3: [*episode.probe, None]}
    panels = 0
    for r, frames in rows.items():
        for c, frame in enumerate(frames):
            ax = grid[r, c]
            if frame is None:
                assert not ax.images  # nothing predicts frame 1; the probe reads no frame after the last
                continue
            shown = ax.images[0]
            assert shown.get_cmap().name == "gray_r" and shown.norm.vmin == 0  # dark ink on white
            if r >= 2:  # predicted and probe: each on its own scale, stated under it
                top = max(float(frame.max()), FORECAST_FLOOR)
                assert shown.norm.vmax == pytest.approx(top) and f"black = {top:.2f}" in ax.get_xlabel()
            else:
                assert shown.norm.vmax == 1.0
            np.testing.assert_allclose(np.asarray(shown.get_array()), np.clip(frame, 0, shown.norm.vmax))
            assert len(ax.images) == (2 if r == 1 else 1)  # the bars drawn over the observed frames only
            panels += 1
    assert panels == 6 + 6 + 5 + 5
    assert [grid[r, 0].get_ylabel() for r in range(4)] == list(FIG4_ROWS)  # every row named
    assert figure4_title(episode) in _texts(fig) and "class belief after frame 5" in _texts(fig)
    legend = _legend_text(fig)
    for name in FIG4_ROWS:  # the legend says what every row is; the probe row in particular
        assert FIG4_ROWS[name] in legend
    assert "gradient stopped" in legend and "occluding bars" in legend
    with_bars, without = figure4(episode, SCALE, occluder=OCCLUDED), figure4(episode, SCALE)
    assert _orange(with_bars) > 20 * _orange(without) + 1000


def test_figure4_leaves_out_the_rows_a_model_does_not_have(embedded_data):
    episode = record_episode(_predictor("omm-hrnn"), _test_env(), index=0)
    assert episode.predicted is None and episode.probe is None
    grid = _grid(build_figure4(episode, scale=SCALE), 2)  # two rows only
    assert [ax.get_ylabel() for ax in grid[:, 0]] == ["ground truth", "observed"]
    assert "probe" not in _legend_text(build_figure4(episode, scale=SCALE))


def test_gif_frames_fill_in_one_frame_at_a_time(embedded_data):
    episode = record_episode(_predictor(), _test_env(), index=1)
    frames = figure4_frames(episode, scale=SCALE, occluder=OCCLUDED)
    assert len(frames) == 6 and all(f.size == frames[0].size for f in frames)
    assert np.array_equal(np.asarray(frames[-1]), np.asarray(figure4(episode, scale=SCALE, occluder=OCCLUDED)))
    grid = _grid(build_figure4(episode, scale=SCALE, ticks=3), 4)
    assert grid[0, 2].images and not grid[0, 3].images  # ground truth at t=4 not drawn yet after 3 ticks
    assert "after frame 3" in _texts(grid[0, 0].figure)


def test_figure4_command_writes_png_and_gif_for_the_chosen_episode(tmp_path, embedded_data, capsys):
    predictor = _predictor()
    checkpoint = predictor.save(tmp_path / "model.pt")
    out = tmp_path / "fig"
    assert cli_main(["figure4", "--model", str(checkpoint), "--index", "4", "--out", str(out), "--scale", str(SCALE)]) == 0
    png, gif = out / "figure4-test4.png", out / "figure4-test4.gif"
    episode = record_episode(Predictor.from_checkpoint(checkpoint), _test_env(), index=4)
    want = figure4(episode, scale=SCALE, occluder=OCCLUDED, title=figure4_title(episode, "model.pt"))
    np.testing.assert_array_equal(np.asarray(Image.open(png).convert("RGB")), np.asarray(want))
    other = record_episode(Predictor.from_checkpoint(checkpoint), _test_env(), index=0)
    other = figure4(other, scale=SCALE, occluder=OCCLUDED, title=figure4_title(other, "model.pt"))
    assert not np.array_equal(np.asarray(other), np.asarray(want))  # --index chose the episode
    with Image.open(gif) as animation:
        assert animation.n_frames == 6 and animation.size == want.size
    with pytest.raises(SystemExit):
        cli_main(["figure4", "--model", str(checkpoint), "--index", "100000", "--out", str(out)])
    assert "index" in capsys.readouterr().err


@needs_shared("mnist")
def test_figure4_command_reads_the_data_folder_it_is_given(tmp_path, embedded_data, capsys):
    checkpoint = _predictor().save(tmp_path / "model.pt")
    beyond_embedded = ["figure4", "--model", str(checkpoint), "--index", "5000", "--out", str(tmp_path / "fig")]
    with pytest.raises(SystemExit):  # the embedded test split has 300 digits
        cli_main(beyond_embedded)
    assert "index" in capsys.readouterr().err
    assert cli_main([*beyond_embedded, "--data-dir", str(find_shared_data("mnist"))]) == 0
    assert (tmp_path / "fig" / "figure4-test5000.png").exists()


# ---------------------------------------------------------------------------------------------- demo and piano rolls


@pytest.fixture(scope="module")
def three_episodes():
    import gymnasium as gym

    from rladder_stream.apps.loading import pretrained_path

    predictor = Predictor.from_checkpoint(pretrained_path())
    env = gym.make("rladder_stream/OccludedMovingMNIST-v0", split="test", data_dir=None)
    return [record_episode(predictor, env, i) for i in range(3)]


def _texts(fig) -> str:
    return " | ".join(t.get_text() for t in fig.findobj(match=lambda o: hasattr(o, "get_text")) if t.get_text())


def test_demo_figure_has_a_title_every_episode_every_panel_named_and_a_legend(three_episodes, embedded_data):
    from rladder_stream.envs.occluded_mnist import OCCLUDED
    from rladder_stream.apps.figures import DEMO_ROWS, build_demo_figure

    fig = build_demo_figure(three_episodes, "shipped model streaming", OCCLUDED)
    text = _texts(fig)
    assert "shipped model streaming" in text
    for episode in three_episodes:  # every streamed episode has its block and its verdict
        assert f"test episode {episode.index}: digit {episode.label}" in text
    axes = [ax for sub in fig.subfigs for ax in sub.axes]
    assert len(axes) == 3 * len(DEMO_ROWS) * 5
    assert sum(ax.get_ylabel() in DEMO_ROWS for ax in axes) == 3 * len(DEMO_ROWS)  # every row named in every block
    legend = " | ".join(t.get_text() for sub in fig.subfigs for lg in sub.legends for t in lg.get_texts())
    for word in ("occluding bars", "ink", "background", "true digit", "highest probability"):
        assert word in legend
    assert text.count("(higher is better)") == 3  # every episode's log-likelihood says which way is good


def test_demo_forecast_row_has_its_own_stated_scale(three_episodes, embedded_data):
    from rladder_stream.envs.occluded_mnist import OCCLUDED
    from rladder_stream.apps.figures import DEMO_ROWS, FORECAST_FLOOR, build_demo_figure, demo_frames

    fig = build_demo_figure(three_episodes, "x", OCCLUDED)
    for block, episode in zip(fig.subfigs[1:], three_episodes):
        axes = np.asarray(block.axes).reshape(len(DEMO_ROWS), 5)
        for t, ax in enumerate(axes[1]):  # the forecast row: black is the frame's own highest probability
            top = max(float(episode.predicted[t].max()), FORECAST_FLOOR)
            assert ax.images[0].norm.vmax == pytest.approx(top) and f"black = p {top:.2f}" in ax.get_xlabel()
            assert axes[0, t].images[0].norm.vmax == 1.0  # the observed frames keep the 0..1 scale
    # the shipped model's forecasts are unsure (max well below 1): on the 0..1 scale they were barely visible
    assert max(float(e.predicted.max()) for e in three_episodes) < 0.9
    first = demo_frames(three_episodes[:1], "x", OCCLUDED)[0]
    assert first.size[0] > first.size[1]


def test_demo_picture_draws_the_occluder(three_episodes, embedded_data):
    from rladder_stream.envs.occluded_mnist import OCCLUDED
    from rladder_stream.apps.figures import demo_figure

    with_bars, without = demo_figure(three_episodes[:1], "x", OCCLUDED), demo_figure(three_episodes[:1], "x", None)
    assert _orange(with_bars) > 20 * _orange(without) + 1000


def test_demo_command_writes_every_episode_into_the_gif(tmp_path, embedded_data, capsys):
    assert cli_main(["demo", "--episodes", "2", "--out", str(tmp_path)]) == 0
    gif = Image.open(tmp_path / "demo.gif")
    assert gif.n_frames == 2 * 5  # every tick of every streamed episode
    assert Image.open(tmp_path / "demo.png").size[1] > 1.5 * Image.open(tmp_path / "demo.png").size[0]


def test_piano_roll_figure_has_pitch_and_time_axes():
    from rladder_stream.apps.figures import build_piano_roll_figure

    roll = np.zeros((40, 88), np.uint8)
    roll[::4, 60 - 21] = 1
    fig = build_piano_roll_figure(roll, np.full((40, 88), 0.1, np.float32), split=30, title="a song", steps_per_beat=2)
    ax = fig.axes[0]
    assert "pitch" in ax.get_ylabel() and "time step" in ax.get_xlabel()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "C4" in labels and "G3" in labels and "C8" not in labels  # note names, zoomed to the notes played
    assert ax.get_ylim() == (53.5, 66.5) and ax.get_xlim() == (0.0, 40.0)  # an octave around MIDI 60, a unit a step
    assert "beat" in _texts(fig) and "a song" in _texts(fig) and "shown:" not in _texts(fig)  # short: all of it


def test_piano_roll_of_a_long_piece_shows_the_continuation_after_the_inputs_last_steps():
    from rladder_stream.apps.figures import ROLL_CONTEXT_STEPS, build_piano_roll_figure, pitch_window

    roll = np.zeros((200, 88), np.uint8)
    roll[:150:3, 48 - 21] = roll[1:150:5, 79 - 21] = 1  # the input plays C3 .. G5
    roll[150::2, 50 - 21] = roll[150::3, 84 - 21] = 1  # the continuation D3 .. C6
    fig = build_piano_roll_figure(roll, None, split=150, title="a long song", steps_per_beat=1)
    ax = fig.axes[0]
    assert ax.get_xlim() == (150.0 - ROLL_CONTEXT_STEPS, 200.0)  # not the whole piece squeezed
    assert pitch_window(roll) == (45, 87) and ax.get_ylim() == (44.5, 87.5)  # the notes played, 3 semitones margin
    assert f"the input's last {ROLL_CONTEXT_STEPS} of 150 steps" in _texts(fig)
    whole = build_piano_roll_figure(roll, None, split=150, title="a long song", steps_per_beat=1, context=None)
    assert whole.axes[0].get_xlim() == (0.0, 200.0) and "shown:" not in _texts(whole)
    assert pitch_window(np.zeros((5, 88))) == (21, 108)  # silence: the whole piano
    top = np.zeros((5, 88))
    top[:, 87] = 1
    assert pitch_window(top) == (96, 108)  # an octave at least, inside the piano
