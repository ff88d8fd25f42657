"""Each cell on its own: encoder cells keep shapes; each decoder combinator learns a tiny denoising task."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rladder_stream.model.cells import DECODER_CELLS, make_decoder_cell, make_encoder_cell, upsample


@pytest.mark.parametrize("kind", ["lstm", "lstm_relu", "gru", "feedforward", "softmax"])
@pytest.mark.parametrize("dims", [None, 1, 2])
def test_encoder_cells_keep_shapes(kind, dims):
    cell = make_encoder_cell(kind, 3, 5, 3, dims, "layer")
    spatial = {None: (), 1: (8,), 2: (6, 6)}[dims]
    x = torch.randn(4, 3, *spatial)
    state = tuple(torch.zeros(4, 5, *spatial) for _ in cell.state_names)
    y, new_state = cell(x, state)
    assert y.shape == (4, 5, *spatial)
    assert len(new_state) == len(cell.state_names)
    assert all(s.shape == (4, 5, *spatial) for s in new_state)


@pytest.mark.parametrize("dims", [None, 1])
def test_an_lstm_relu_cell_starts_as_the_feed_forward_cell_and_keeps_an_lstm_memory(dims):
    """lstm_relu: with its memory readout at zero (as it starts) the output is the ReLU of the normalised input
    transform's output block, whatever the state, the feedback (``side``, into the gates only) included; the state
    is an LSTM's, computed from the gate blocks by hand; a trained readout adds U h' to the output."""
    torch.manual_seed(0)
    cell = make_encoder_cell("lstm_relu", 3, 4, 1, dims, "batch").eval()
    spatial = () if dims is None else (5,)
    x, side = 4 * torch.randn(6, 3, *spatial), torch.randn(6, 16, *spatial)  # running statistics: mean 0, var 1
    h0, c0 = torch.randn(6, 4, *spatial), torch.randn(6, 4, *spatial)
    out, (h, c) = cell(x, (h0, c0), side)
    pre = cell.norm(cell.input_transform(x))
    torch.testing.assert_close(out, torch.relu(pre[:, 16:]))
    assert (out == 0).any() and (out > 1).any()  # sparse and not bounded by 1, as the LSTM's output is
    i, f, o, g = (pre[:, :16] + cell.hidden_transform(h0) + side).chunk(4, dim=1)
    c_want = torch.sigmoid(f) * c0 + torch.sigmoid(i) * torch.tanh(g)
    torch.testing.assert_close(c, c_want)
    torch.testing.assert_close(h, torch.sigmoid(o) * torch.tanh(c_want))
    with torch.no_grad():
        cell.memory_readout.weight.normal_()
    torch.testing.assert_close(cell(x, (h0, c0), side)[0], torch.relu(pre[:, 16:] + cell.memory_readout(h)))


def test_a_softmax_cell_is_the_feed_forward_cell_with_its_units_competing():
    """The softmax cell (the reference Ladder's top) is the feed-forward cell's batch-normalised transform (plus
    the side input) through a softmax over the channel axis: each sample's code sums to 1, and the same weights
    in a feed-forward cell give the ReLU of the same pre-activation."""
    torch.manual_seed(0)
    soft, relu = make_encoder_cell("softmax", 6, 5, 1, None, "batch"), make_encoder_cell("feedforward", 6, 5, 1, None, "batch")
    relu.load_state_dict(soft.state_dict())
    x, side = torch.randn(8, 6), torch.randn(8, 5)
    code, state = soft(x, (), side)
    assert state == ()
    torch.testing.assert_close(code.sum(dim=1), torch.ones(8))
    pre = soft.norm(soft.transform(x)) + side
    torch.testing.assert_close(code, torch.softmax(pre, dim=1))
    torch.testing.assert_close(relu(x, (), side)[0], torch.relu(pre))


def _denoising_problem(dims, n=256, seed=0):
    """Denoise ``z = clean + noise`` given a clean but coarse view ``u_in`` from the level above.

    Dense: clean vectors are one of 4 prototypes and ``u_in`` is the prototype's one-hot id.
    Maps: clean maps are 2x nearest-upsampled 4x4 maps and ``u_in`` is the 4x4 map.
    """
    g = torch.Generator().manual_seed(seed)
    if dims is None:
        channels = 6
        prototypes = torch.rand(4, channels, generator=g) * 2 - 1
        ids = torch.randint(0, 4, (n,), generator=g)
        clean, u_in = prototypes[ids], nn.functional.one_hot(ids, 4).float()
    else:
        channels = 2
        u_in = torch.rand(n, channels, 4, 4, generator=g) * 2 - 1
        clean = u_in.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    noisy = clean + 0.7 * torch.randn(clean.shape, generator=g)
    return u_in, noisy, clean, channels


@pytest.mark.parametrize("kind", sorted(DECODER_CELLS))
def test_each_decoder_cell_learns_tiny_denoising(kind):
    dims = None if kind == "g1" else 2
    torch.manual_seed(0)
    u_in, z, clean, channels = _denoising_problem(dims)
    project = nn.Linear(4, channels) if dims is None else upsample(2, channels, channels, 2)
    cell = make_decoder_cell(kind, project, channels, dims, "layer")
    opt = torch.optim.Adam(cell.parameters(), lr=0.03)
    loss_fn = nn.functional.mse_loss
    start = loss_fn(cell(u_in, z), clean).item()
    for _ in range(300):
        opt.zero_grad()
        loss = loss_fn(cell(u_in, z), clean)
        loss.backward()
        opt.step()
    final = loss_fn(cell(u_in, z), clean).item()
    noise_only = loss_fn(z, clean).item()  # what passing z through unchanged would score
    assert final < 0.2 * start, (start, final)
    assert final < 0.5 * noise_only, (noise_only, final)  # it used the signal from above, not just z


@pytest.mark.parametrize("kind", ["g1", "convg1"])
def test_gaussian_combinators_start_open_closed_or_stable_as_asked(kind):
    """open: y = 0.5 z + 0.25 u (u the normalised projection); open_stable: the same start, v squashed into
    (0, 1); closed: the original Ladder's y = 0 with zero slope in u and z."""
    dims = None if kind == "g1" else 2
    u_in, z, _, channels = _denoising_problem(dims, n=8)
    project = nn.Linear(4, channels) if dims is None else upsample(2, channels, channels, 2)
    for init in ("open", "open_stable"):
        cell = make_decoder_cell(kind, project, channels, dims, "layer", init=init)
        u = cell.norm(cell.project(u_in))
        torch.testing.assert_close(cell(u_in, z), 0.5 * z + 0.25 * u)
    stable = make_decoder_cell(kind, project, channels, dims, "layer", init="open_stable")
    with torch.no_grad():
        stable.v.a[4].fill_(50.0)  # however far v's pre-activation goes, v stays below 1
    assert (stable.v(torch.randn(5, channels)) <= 1).all()
    closed = make_decoder_cell(kind, project, channels, dims, "layer", init="closed")
    assert torch.count_nonzero(closed(u_in, z)) == 0
    with pytest.raises(ValueError, match="decoder init"):
        make_decoder_cell(kind, project, channels, dims, "layer", init="ajar")


def test_nearest_upsampling_has_no_fixed_pattern_of_the_stride():
    """A constant map upsampled: the transposed convolution paints a pattern with the stride's period (one
    weight set per offset), nearest-then-convolve does not (away from the border)."""
    x = torch.ones(1, 3, 4, 4)
    torch.manual_seed(0)
    transposed = upsample(2, 3, 2, 2, "transposed")(x)
    nearest = upsample(2, 3, 2, 2, "nearest")(x)
    assert transposed.shape == nearest.shape == (1, 2, 8, 8)
    assert not torch.allclose(transposed[..., 2:6, 2], transposed[..., 2:6, 3])  # columns alternate
    inner = nearest[..., 1:-1, 1:-1]
    torch.testing.assert_close(inner, inner[..., :1, :1].expand_as(inner))
    with pytest.raises(ValueError, match="upsampling"):
        upsample(2, 3, 2, 2, "bicubic")


@pytest.mark.parametrize("kernel,length", [(1, 1), (1, 7), (3, 1), (3, 7), (5, 1)])
def test_a_same_conv1d_is_the_convolution_it_replaces(kernel, length):
    """``conv(1, ...)`` computes kernel-1 and length-1 cases as a matrix product (the dense Tagger's layers; much
    faster on the CPU than the convolution kernels): outputs and gradients equal nn.Conv1d's with the same weights."""
    from rladder_stream.model.cells import SameConv1d, conv

    torch.manual_seed(0)
    fast = conv(1, 6, 5, kernel)
    assert isinstance(fast, SameConv1d)
    plain = nn.Conv1d(6, 5, kernel, padding=kernel // 2)
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(4, 6, length, requires_grad=True)
    y_fast, y_plain = fast(x), plain(x)
    torch.testing.assert_close(y_fast, y_plain)
    g = torch.randn_like(y_plain)
    grads_fast = torch.autograd.grad(y_fast, [x, fast.weight, fast.bias], g)
    grads_plain = torch.autograd.grad(y_plain, [x, plain.weight, plain.bias], g)
    for a, b in zip(grads_fast, grads_plain):
        torch.testing.assert_close(a, b)


# ----------------------------------------------------------------------------- per-tick batch norm


def _tick_norm(rows: int = 4, channels: int = 3, affine: bool = True):
    from rladder_stream.model.cells import TickBatchNorm

    norm = TickBatchNorm(channels, rows=rows, affine=affine)
    if affine:
        with torch.no_grad():
            norm.weight.copy_(torch.tensor([0.5, 2.0, -1.0]))
            norm.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    return norm


def test_a_tick_norm_trains_as_batch_norm_and_moves_only_its_ticks_row():
    """Training output = BatchNorm2d's in training (batch statistics); the running row of the batch's tick moves as
    BatchNorm2d's running statistics do, the other rows keep their init."""
    from rladder_stream.model.cells import ticks_set

    torch.manual_seed(0)
    norm, reference = _tick_norm(), nn.BatchNorm2d(3)
    with torch.no_grad():
        reference.weight.copy_(norm.weight)
        reference.bias.copy_(norm.bias)
    x = 3 * torch.randn(6, 3, 5, 5) + 1
    with ticks_set([norm], torch.full((6,), 2)):
        y = norm.train()(x)
    torch.testing.assert_close(y, reference.train()(x), rtol=0, atol=1e-6)
    torch.testing.assert_close(norm.running_mean[2], reference.running_mean)
    torch.testing.assert_close(norm.running_var[2], reference.running_var)
    for row in (0, 1, 3):
        assert torch.equal(norm.running_mean[row], torch.zeros(3)) and torch.equal(norm.running_var[row], torch.ones(3))
    assert norm.rows_trained.item() == 3 and norm.tick is None  # the tick is lent for the block only


def test_a_tick_norm_evaluates_each_sample_with_its_own_ticks_mean_and_the_pooled_variance():
    """Known answer: in eval mode sample i is normalised with row ``tick_i``'s mean and the variance of the trained
    ticks pooled (equal weights: mean of the variances plus variance of the means; a BatchNorm2d holding these gives
    the same); ticks past the last trained row use that row; untrained rows do not enter; without a tick it refuses."""
    from rladder_stream.model.cells import ticks_set

    norm = _tick_norm().eval()
    with torch.no_grad():
        norm.running_mean.copy_(torch.randn(4, 3))
        norm.running_var.copy_(0.5 + torch.rand(4, 3))
        norm.rows_trained.fill_(3)  # rows 0-2 trained, row 3 never
    means, variances = norm.running_mean[:3], norm.running_var[:3]
    pooled = variances.mean(0) + means.var(0, correction=0)
    torch.testing.assert_close(norm.pooled_variance(), pooled)
    x, ticks = torch.randn(5, 3, 4, 4), torch.tensor([0, 2, 1, 3, 7])
    with ticks_set([norm], ticks):
        y = norm(x)
    for i, tick in enumerate(ticks.tolist()):
        row = min(tick, 2)
        reference = nn.BatchNorm2d(3).eval()
        with torch.no_grad():
            reference.weight.copy_(norm.weight), reference.bias.copy_(norm.bias)
            reference.running_mean.copy_(norm.running_mean[row]), reference.running_var.copy_(pooled)
        torch.testing.assert_close(y[i : i + 1], reference(x[i : i + 1]), rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match="only the RTagger"):
        norm(x)
    untrained = _tick_norm()
    torch.testing.assert_close(untrained.pooled_variance(), torch.ones(3))  # before training: row 0's initial 1


def test_the_cells_build_exactly_what_a_configuration_may_name(monkeypatch):
    """model/config.py names the cells as plain data (no torch); cells.py refuses to load when its tables differ."""
    from rladder_stream.model import cells, config

    cells.check_config_names()
    monkeypatch.setattr(config, "DECODER_CELLS", (*config.DECODER_CELLS, "convg4"))
    with pytest.raises(ImportError, match="DECODER_CELLS"):
        cells.check_config_names()
    monkeypatch.setattr(config, "STATELESS_KINDS", ("feedforward",))
    with pytest.raises(ImportError, match="STATELESS_KINDS"):
        cells.check_config_names()
