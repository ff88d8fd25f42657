"""RTagger (docs/design.md#the-rtagger): masks, interchangeable groups, step = sequence, the Tagger and ConvNet configurations,
its costs and tasks, and streaming groupings through ``Predictor``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rladder_stream import Predictor
from rladder_stream.model.cells import ticks_set
from rladder_stream.model.ladder import RLadder
from rladder_stream.model.registry import get_config, list_configs
from rladder_stream.model.registry import build_model
from rladder_stream.model.tagger import RTagger, engine_config, group_mixture_nll
from rladder_stream.training.tasks import MovingMNISTTask, TexturedMNISTTask

TAGGERS = sorted(n for n in list_configs() if get_config(n, size="tiny").groups)


def _perturb(model: torch.nn.Module, scale: float = 0.2, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def _tagger(name: str = "tmnist-rtagger", **overrides) -> RTagger:
    model = build_model(get_config(name, size="tiny", **overrides))
    _perturb(model)
    return model.double().eval()


def test_the_registry_has_the_table4_and_moving_mnist_models():
    assert {"tmnist-rtagger", "tmnist-tagger", "mmnist-rtagger", "mmnist-tagger"} <= set(TAGGERS)
    assert isinstance(build_model(get_config("tmnist-rtagger", size="tiny")), RTagger)
    convnet = build_model(get_config("tmnist-convnet", size="tiny"))
    assert isinstance(convnet, RLadder) and convnet.state_spec() == {}  # encoder-like, feed-forward
    tagger = build_model(get_config("tmnist-tagger", size="tiny"))
    assert set(tagger.state_spec()) == {"z", "m", "tick"}  # Tagger: a non-recurrent Ladder engine, only z, m (and the tick)
    soft_top = get_config("shapes-tagger-dense", size="tiny", top_kind="softmax")  # the reference Ladder's top
    assert not soft_top.recurrent and set(build_model(soft_top).state_spec()) == {"z", "m", "tick"}
    rtagger = build_model(get_config("tmnist-rtagger", size="tiny"))
    assert {"engine.enc1.h", "engine.dec1.prev", "z", "m"} <= set(rtagger.state_spec())
    video_tagger = build_model(get_config("mmnist-tagger", size="tiny"))
    assert isinstance(video_tagger, RTagger) and set(video_tagger.state_spec()) == {"z", "m", "tick"}  # frames carry z and m
    pooled = build_model(get_config("mmnist-tagger", size="tiny", norm="batch"))
    assert set(pooled.state_spec()) == {"z", "m"}  # the tick only where statistics are kept per tick


def test_engine_sees_four_channels_and_a_none_class():
    cfg = get_config("tmnist-rtagger", size="tiny")
    engine = engine_config(cfg)
    assert engine.in_channels == 4 and engine.n_classes == cfg.n_classes + 1 and engine.groups == 0
    model = build_model(cfg)
    assert model.engine.encoders[0].input_transform.in_channels == 4  # d^{t-1} enters through its own transform
    assert model.engine.feedback[0][0].in_channels == cfg.levels[0].channels
    assert model.engine.class_head.out_features == cfg.n_classes + 1


@pytest.mark.parametrize("name", TAGGERS)
def test_masks_sum_to_one_and_outputs_have_their_shapes(name):
    model = _tagger(name)
    cfg = model.config
    x = torch.rand(2, 3, *cfg.obs_shape, dtype=torch.float64)
    outputs, state = model(x)
    k = cfg.groups
    assert outputs["groups"].shape == outputs["reconstructions"].shape == (2, 3, k, *cfg.obs_shape)
    torch.testing.assert_close(outputs["groups"].sum(2), torch.ones(2, 3, *cfg.obs_shape, dtype=torch.float64))
    assert (outputs["groups"] >= 0).all()
    assert outputs["prediction_logits"].shape == (2, 3, *cfg.obs_shape)
    if cfg.n_classes:
        torch.testing.assert_close(outputs["class_logits"].exp().sum(-1), torch.ones(2, 3, dtype=torch.float64))
    assert {k: tuple(v.shape[1:]) for k, v in state.items()} == model.state_spec()


def test_initial_masks_are_a_softmax_of_controllable_noise():
    model = build_model(get_config("tmnist-rtagger", size="tiny"))
    a = model.init_state(3, generator=torch.Generator().manual_seed(5))
    b = model.init_state(3, generator=torch.Generator().manual_seed(5))
    c = model.init_state(3, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(a["m"], b["m"])
    assert not torch.allclose(a["m"], c["m"])
    torch.testing.assert_close(a["m"].sum(1), torch.ones(3, 32, 32))
    assert (a["z"] == a["z"].flatten()[0]).all()  # z starts as a constant
    assert all((v == 0).all() for k, v in a.items() if k.startswith("engine."))


@pytest.mark.parametrize("name", TAGGERS)
def test_groups_are_interchangeable(name):
    """Permuting the initial group noise permutes every group output and leaves the class beliefs alone."""
    model = _tagger(name)
    cfg = model.config
    x = torch.rand(2, 3, *cfg.obs_shape, dtype=torch.float64)
    state = model.init_state(2, generator=torch.Generator().manual_seed(1))
    perm = torch.arange(cfg.groups - 1, -1, -1)  # reversed groups
    permuted = {k: v if k == "tick" else v[:, perm] for k, v in state.items()}  # the engine state is per group too (zeros here)
    out, final = model(x, state)
    out_p, final_p = model(x, permuted)
    # float64; batch statistics summed in another order differ in the last bits, which the dense engines'
    # 1,600-input projections (random weights perturbed by 0.2) amplify to ~1e-7
    close = {"rtol": 1e-5, "atol": 1e-6}
    for key in ("groups", "reconstructions"):
        torch.testing.assert_close(out_p[key], out[key][:, :, perm], **close)
    for key in final:
        torch.testing.assert_close(final_p[key], final[key] if key == "tick" else final[key][:, perm], **close)
    if cfg.n_classes:
        torch.testing.assert_close(out_p["class_logits"], out["class_logits"])
    assert not torch.allclose(out["groups"][:, :, 0], out["groups"][:, :, 1])  # the noise did break the symmetry


def test_a_closed_engine_passes_its_bottom_input_through_at_init():
    """Started closed, the bottom combinator is made d_0 = e_0 (not the zero of the original Ladder init), so
    the heads read each group's own inputs from the first step."""
    for name in ("tmnist-rtagger", "tmnist-tagger", "mmnist-rtagger"):
        model = build_model(get_config(name, size="tiny", decoder_init="closed"))
        engine = model.engine
        bottom = engine.decoders[0]
        e0 = torch.rand(3, 4, *engine.config.obs_shape)
        d1 = torch.randn(3, engine.config.levels[0].channels, *engine.config.level_spatial(1))
        with ticks_set(model.tick_norms, torch.zeros(3, dtype=torch.long)):  # per-tick norms: the first tick
            torch.testing.assert_close(bottom(d1, e0), e0)


def test_an_open_engine_mixes_its_bottom_input_with_the_signal_from_above():
    """Started open (the default), the bottom combinator blends e_0 with what comes from above: both reach the
    heads (a pass-through would cut the levels above off from the cost)."""
    for name in ("tmnist-rtagger", "tmnist-tagger", "mmnist-rtagger"):
        model = build_model(get_config(name, size="tiny"))
        engine = model.engine
        bottom = engine.decoders[0]
        e0 = torch.rand(3, 4, *engine.config.obs_shape)
        d1 = torch.randn(3, engine.config.levels[0].channels, *engine.config.level_spatial(1))
        with ticks_set(model.tick_norms, torch.zeros(3, dtype=torch.long)):
            y = bottom(d1, e0)
            assert not torch.allclose(bottom(d1, e0 + 0.5), y, atol=1e-3)  # a function of e_0
            assert not torch.allclose(bottom(2 * d1, e0), y, atol=1e-3)  # and of the signal from above


@pytest.mark.parametrize("name", TAGGERS)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_at_init_the_groups_keep_their_initial_masks_apart(name, mode):
    """Untrained (not perturbed) model: different initial masks give different masks after iteration 1, and
    the groups still differ at the last iteration (with the all-zero bottom decoder of the default init every
    m̂ was exactly 1/K and every ẑ equal from iteration 1 on: the groups could never separate)."""
    torch.manual_seed(0)
    model = build_model(get_config(name, size="tiny")).train(mode == "train")
    cfg = model.config
    x = torch.rand(4, 3, *cfg.obs_shape)
    with torch.no_grad():
        a, _ = model(x, model.init_state(4, generator=torch.Generator().manual_seed(1)))
        b, _ = model(x, model.init_state(4, generator=torch.Generator().manual_seed(2)))
    assert (a["groups"][:, 0] - b["groups"][:, 0]).abs().mean() > 1e-3
    for t in range(3):
        # (in eval mode, untrained running statistics shrink the heads' outputs: the groups' masks are 5e-5 to
        # 1e-3 apart at init; the closed decoder without its pass-through had them exactly equal)
        assert (a["groups"][:, t, 0] - a["groups"][:, t, 1]).abs().mean() > 1e-5, t
        assert (a["reconstructions"][:, t, 0] - a["reconstructions"][:, t, 1]).abs().mean() > 1e-5, t


@pytest.mark.parametrize("name", TAGGERS)
def test_at_init_the_mixture_cost_trains_the_mask_head(name):
    """The denoising cost reaches the mask head from the first step (it gave it exactly zero gradient while the
    groups were identical)."""
    torch.manual_seed(0)
    model = build_model(get_config(name, size="tiny")).train()
    x = torch.rand(4, 3, *model.config.obs_shape)
    outputs, _ = model(x + 0.1 * torch.randn_like(x))
    group_mixture_nll(outputs, x).backward()
    assert model.m_head.weight.grad.abs().sum() > 1e-6
    assert model.m_scale.grad.abs() > 1e-6


@pytest.mark.parametrize("name, overrides", [("tmnist-rtagger", {}), ("tmnist-tagger", {}),
                                             ("tmnist-rtagger", {"tagger_group_roles": True})])
def test_step_by_step_equals_the_whole_sequence(name, overrides):
    model = _tagger(name, **overrides)
    x = torch.rand(2, 5, 32, 32, dtype=torch.float64)
    state = model.init_state(2, generator=torch.Generator().manual_seed(2))
    whole, final = model(x, state)
    first, mid = model(x[:, :2], state)
    second, final2 = model(x[:, 2:], mid)
    s, per_tick = state, []
    for t in range(5):
        out, s = model.step(x[:, t], s)
        per_tick.append(out)
    for key in whole:
        torch.testing.assert_close(torch.cat([first[key], second[key]], 1), whole[key])
        torch.testing.assert_close(torch.stack([o[key] for o in per_tick], 1), whole[key])
    for key in final:
        torch.testing.assert_close(final2[key], final[key])
        torch.testing.assert_close(s[key], final[key])


def test_group_roles_give_each_group_its_index_so_the_groups_are_no_longer_interchangeable():
    """tagger_group_roles: the engine reads K more maps, group k's one-hot index; reversing the groups' starting
    state then does not just reverse the outputs (as it does without roles, test_groups_are_interchangeable); that
    its step equals the whole sequence is in test_step_by_step_equals_the_whole_sequence."""
    model = _tagger("tmnist-rtagger", tagger_group_roles=True)
    cfg, k = model.config, model.config.groups
    assert engine_config(cfg).in_channels == 4 + k
    x = torch.rand(2, 3, *cfg.obs_shape, dtype=torch.float64)
    state = model.init_state(2, generator=torch.Generator().manual_seed(1))
    inputs = model.tagger_inputs(x[:, 0], state["z"], state["m"])
    assert inputs.shape == (2, k, 4 + k, *cfg.obs_shape)
    torch.testing.assert_close(inputs[:, :, :4], _tagger("tmnist-rtagger").tagger_inputs(x[:, 0], state["z"], state["m"]))
    torch.testing.assert_close(inputs[0, :, 4:, 5, 7], torch.eye(k, dtype=torch.float64))
    assert (inputs[:, :, 4:] == inputs[:, :, 4:, :1, :1]).all()  # constant over the image
    perm = torch.arange(k - 1, -1, -1)
    out, _ = model(x, state)
    out_p, _ = model(x, {key: v if key == "tick" else v[:, perm] for key, v in state.items()})
    assert not torch.allclose(out_p["groups"], out["groups"][:, :, perm], atol=1e-4)


def test_step_is_pure_and_the_rtagger_remembers_but_the_tagger_only_through_z_and_m():
    model = _tagger("tmnist-rtagger")
    state = model.init_state(2, generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in state.items()}
    _, after = model.step(torch.rand(2, 32, 32, dtype=torch.float64), state)
    assert all(torch.equal(before[k], state[k]) for k in state)
    assert not torch.equal(after["engine.enc1.h"], state["engine.enc1.h"])


def test_class_beliefs_sum_the_groups_and_drop_the_none_class():
    model = _tagger("tmnist-rtagger")
    x = torch.rand(2, 32, 32, dtype=torch.float64)
    state = model.init_state(2, generator=torch.Generator().manual_seed(3))
    out, _ = model.step(x, state)
    engine_state = {n: state["engine." + n].flatten(0, 1) for n in model.engine.state_spec()}
    inputs = model.tagger_inputs(x, state["z"], state["m"]).flatten(0, 1)
    with ticks_set(model.tick_norms, torch.zeros(4, dtype=torch.long)):  # 2 streams x 2 groups at their first tick
        engine_out, _ = model.engine.step(inputs, engine_state)
    probs = torch.softmax(engine_out["class_logits"], -1).reshape(2, 2, 11).sum(1)[:, :10]
    torch.testing.assert_close(out["class_logits"].exp(), probs / probs.sum(-1, keepdim=True))


def test_tagger_inputs_follow_spec_2_5():
    model = _tagger("tmnist-rtagger", input_noise=0.3)
    x = torch.rand(1, 32, 32, dtype=torch.float64)
    z = torch.rand(1, 2, 32, 32, dtype=torch.float64)
    m = torch.softmax(torch.randn(1, 2, 32, 32, dtype=torch.float64), 1)
    inputs = model.tagger_inputs(x, z, m)
    var = 0.3**2 + model.log_variance.exp()
    ell = 0.5 * torch.log(var) + (z - x[:, None]) ** 2 / (2 * var)
    torch.testing.assert_close(inputs[:, :, 0], z)
    torch.testing.assert_close(inputs[:, :, 1], m)
    torch.testing.assert_close(inputs[:, :, 2], m * (x[:, None] - z))
    torch.testing.assert_close(inputs[:, :, 3], torch.softmax(-ell, 1))


def test_group_mixture_nll_is_the_mixture_likelihood():
    gen = torch.Generator().manual_seed(0)
    masks = torch.softmax(torch.randn(2, 3, 2, 4, 4, generator=gen), 2)
    recon, x = torch.rand(2, 3, 2, 4, 4, generator=gen), torch.rand(2, 3, 4, 4, generator=gen)
    log_var = torch.full((2, 3), math.log(0.04))
    got = group_mixture_nll({"groups": masks, "reconstructions": recon, "log_variance": log_var}, x)
    density = (masks * torch.exp(-(x[:, :, None] - recon) ** 2 / 0.08) / math.sqrt(2 * math.pi * 0.04)).sum(2)
    torch.testing.assert_close(got, -torch.log(density).sum((-1, -2)).mean())
    with pytest.raises(ValueError, match="do not match"):
        group_mixture_nll({"groups": masks, "reconstructions": recon, "log_variance": log_var}, x[:, :2])


def test_the_mixture_cost_moves_each_pixel_to_the_group_that_reconstructs_it():
    """With group 1 reconstructing the left half and group 2 the right, the cost's gradient on the mask
    logits favours group 1 on the left and group 2 on the right (how grouping is learnt)."""
    x = torch.rand(1, 1, 4, 4)
    recon = torch.stack([x.clone(), x.clone()], dim=2)
    recon[:, :, 0, :, 2:] += 0.5  # group 1 is wrong on the right
    recon[:, :, 1, :, :2] -= 0.5  # group 2 is wrong on the left
    logits = torch.zeros(1, 1, 2, 4, 4, requires_grad=True)
    cost = group_mixture_nll({"groups": torch.softmax(logits, 2), "reconstructions": recon,
                              "log_variance": torch.full((1, 1), math.log(0.01))}, x)
    (grad,) = torch.autograd.grad(cost, logits)
    assert (grad[..., 0, :, :2] < 0).all() and (grad[..., 0, :, 2:] > 0).all()  # descent raises group 1 on the left
    assert (grad[..., 1, :, 2:] < 0).all() and (grad[..., 1, :, :2] > 0).all()


def test_bad_inputs_raise_clear_errors():
    model = build_model(get_config("tmnist-rtagger", size="tiny"))
    state = model.init_state(2)
    with pytest.raises(ValueError, match="observations must be"):
        model.step(torch.rand(2, 28, 28), state)
    with pytest.raises(ValueError, match="2 groups"):
        model.step(torch.rand(3, 32, 32), state)
    with pytest.raises(ValueError, match="batch"):
        model.init_state(0)
    with pytest.raises(ValueError, match="groups must be"):
        get_config("tmnist-rtagger", size="tiny", groups=1)
    with pytest.raises(ValueError, match="bottom decoder"):
        get_config("tmnist-rtagger", size="tiny", predict=False)
    with pytest.raises(ValueError, match="in_channels"):
        get_config("tmnist-rtagger", size="tiny", in_channels=0)
    predictor = Predictor(model, n_streams=2)
    kept = {k: v.clone() for k, v in predictor.state.items()}
    with pytest.raises(ValueError, match="shape"):
        predictor.step(np.zeros((2, 28, 28), np.float32))
    assert all(torch.equal(kept[k], predictor.state[k]) for k in kept)


# ------------------------------------------------------------------------------ tasks


@pytest.mark.usefixtures("embedded_data")
def test_textured_task_batches_costs_and_metrics():
    cfg = get_config("tmnist-rtagger", size="tiny")
    task = TexturedMNISTTask(cfg)
    a, b = task.train_batch(np.random.default_rng([0, 7]), 4), task.train_batch(np.random.default_rng([0, 7]), 4)
    assert all(torch.equal(a[k], b[k]) for k in a)  # a pure function of the rng: exact resume
    assert a["inputs"].shape == (4, 3, 32, 32) and a["true_groups"].shape == (4, 3, 32, 32)
    torch.testing.assert_close(a["targets"], a["inputs"])  # denoising: the clean image (noise is added later)
    model = build_model(cfg)
    outputs, _ = model(a["inputs"])
    costs = task.costs(outputs, a)
    assert set(costs) == {"low_level", "classification", "total"}
    torch.testing.assert_close(costs["total"], cfg.prediction_weight * costs["low_level"] + cfg.class_weight * costs["classification"])
    unlabelled = dict(a, labels=torch.full_like(a["labels"], -1))  # semi-supervised: no label, no class cost
    assert task.costs(outputs, unlabelled)["classification"] == 0
    metrics = task.metrics(outputs, a)
    assert {"ami_1", "ami_2", "ami_3", "ami", "class_error"} <= set(metrics)
    assert metrics["ami"][1] == 3 * metrics["ami_1"][1] > 0
    convnet = get_config("tmnist-convnet", size="tiny")
    out, _ = build_model(convnet)(a["inputs"])
    assert set(TexturedMNISTTask(convnet).costs(out, a)) == {"classification", "total"}


@pytest.mark.usefixtures("embedded_data")
def test_moving_task_scores_each_forecast_against_the_next_frame():
    task = MovingMNISTTask(get_config("mmnist-rtagger", size="tiny"))
    batch = task.train_batch(np.random.default_rng(0), 2)
    assert batch["inputs"].shape == (2, 19, 64, 64)
    torch.testing.assert_close(batch["targets"][:, :-1], batch["inputs"][:, 1:])
    # perfect masks for the NEXT frame's digits score AMI 1 (background and overlaps ignored)
    truth = batch["true_groups"].long()
    masks = torch.stack([(truth == k).float() for k in (2, 1, 0)], dim=2)
    total, count = task.metrics({"groups": masks}, batch)["ami"]
    assert count > 0 and total == pytest.approx(count)
    # the chance level scores each last grouping against the previous sequence's truth: masks made from
    # that truth score 1 there (and not 1 against their own)
    metrics = task.metrics({"groups": masks.roll(1, dims=0)}, batch)
    assert metrics["ami_shuffled"] == (pytest.approx(2.0), 2.0) and metrics["ami_19"][0] < 2.0
    from rladder_stream.envs.moving_mnist import AMI_IGNORE, MovingMNISTEnv

    assert task.ami_ignore == AMI_IGNORE == MovingMNISTEnv.ami_ignore  # the benchmark scores the same pixels
    with pytest.raises(ValueError, match="labelled"):
        from rladder_stream.training.train import TrainConfig

        MovingMNISTTask(get_config("mmnist-rtagger", size="tiny"), TrainConfig(labelled=1000))


# ------------------------------------------------------------------------------ streaming


@pytest.mark.parametrize("name, ticks", [("tmnist-rtagger", 3), ("mmnist-rtagger", 2)])
def test_predictor_streams_groups_and_reconstructions(name, ticks):
    model = build_model(get_config(name, size="tiny"))
    _perturb(model)
    cfg = model.config
    torch.manual_seed(0)
    predictor = Predictor(model, n_streams=2)
    torch.manual_seed(0)
    reference_state = model.init_state(2)
    obs = np.random.default_rng(0).random((ticks, 2, *cfg.obs_shape), dtype=np.float32)
    for t in range(ticks):
        out = predictor.step(obs[t])
        with torch.no_grad():
            raw, reference_state = model.step(torch.from_numpy(obs[t]), reference_state)
        assert out.groups.shape == out.reconstructions.shape == (2, cfg.groups, *cfg.obs_shape)
        np.testing.assert_allclose(out.groups.sum(1), 1.0, atol=1e-5)
        np.testing.assert_allclose(out.groups, raw["groups"].numpy(), atol=1e-6)
        np.testing.assert_allclose(out.reconstructions, raw["reconstructions"].numpy(), atol=1e-6)
        assert out.next_obs.shape == (2, *cfg.obs_shape) and 0 <= out.next_obs.min() and out.next_obs.max() <= 1
        assert (out.class_probs is not None) == bool(cfg.n_classes)
    single = Predictor(model).step(obs[0, 0])  # one stream, no batch axis
    assert single.groups.shape == (cfg.groups, *cfg.obs_shape)
    before = {k: v.clone() for k, v in predictor.state.items()}
    predictor.reset([1])  # fresh noise and zero engine state for stream 1 only
    assert all(torch.equal(before[k][0], predictor.state[k][0]) for k in before)
    assert not torch.equal(before["m"][1], predictor.state["m"][1])


# ------------------------------------------------------------------------------ Table 4 and Moving MNIST documents


def _t4_result(config: str, seed: int, labelled: int | None, amis: tuple[float, ...] | None, errors: tuple[float, ...]) -> dict:
    test = {f"class_error_{t + 1}": e for t, e in enumerate(errors)}
    test["class_error"] = errors[-1]
    if amis:
        test.update({f"ami_{t + 1}": a for t, a in enumerate(amis)})
        test["ami"] = sum(amis) / len(amis)
    return {"model": config, "seed": seed, "size": "cpu", "steps": 100, "train_time_s": 50.0, "wall_time_s": 60.0,
            "hardware": "test machine", "data": "full MNIST", "test": test,
            "train_config": {"labelled": labelled, "epochs": 1, "train_sequences": 3200, "batch_size": 32}}


def _row(markdown: str, block: str, label: str) -> list[str]:
    section = markdown.split(f"## {block}\n")[1]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} in block {block!r}")


def test_table4_markdown_is_a_pure_function_of_results():
    from rladder_stream.reproduce.table4 import table4_markdown

    def with_chance(result: dict, chance: float) -> dict:
        result["test"]["ami_shuffled"] = chance
        return result

    results = [
        with_chance(_t4_result("tmnist-rtagger", 0, None, (0.30, 0.50, 0.60), (40.0, 30.0, 20.0)), 0.01),
        with_chance(_t4_result("tmnist-rtagger", 1, None, (0.34, 0.54, 0.64), (42.0, 32.0, 22.0)), 0.03),
        _t4_result("tmnist-tagger", 0, None, (0.05, 0.06, 0.07), (85.0, 85.0, 85.0)),  # did not train
        _t4_result("tmnist-tagger", 1, None, (0.20, 0.25, 0.30), (50.0, 50.0, 50.0)),
        _t4_result("tmnist-convnet", 0, None, None, (70.0, 70.0, 70.0)),
        _t4_result("tmnist-convnet", 1, None, None, (72.0, 72.0, 72.0)),
        _t4_result("tmnist-rtagger", 0, 1000, (0.10, 0.12, 0.15), (88.0, 85.0, 84.0)),
        # without the class task: judged by AMI alone (its untrained class head's error is not shown)
        _t4_result("tmnist-rtagger-noclass", 0, None, (0.05, 0.10, 0.20), (90.0, 90.0, 90.0)),
        _t4_result("tmnist-rtagger-noclass", 1, None, (0.03, 0.06, 0.08), (90.0, 90.0, 90.0)),
    ]
    text = table4_markdown(results, command="rladder-stream reproduce table4 --seeds 2", generated="now")
    assert text == table4_markdown(list(reversed(results)), command="rladder-stream reproduce table4 --seeds 2", generated="now")
    full = "50k labelled"
    assert _row(text, full, "RTagger after iteration 1")[2:] == ["2 / 2", "0.320 ± 0.028", "—", "41.00 ± 1.41"]
    assert _row(text, full, "RTagger after iteration 3")[3:5] == ["0.620 ± 0.028", "0.020 ± 0.014"]
    assert _row(text, full, "Tagger")[2] == "1 / 2"  # one seed trained
    assert _row(text, full, "ConvNet")[2:] == ["2 / 2", "—", "—", "71.00 ± 1.41"]
    assert _row(text, full, "RTagger without class task")[2:] == ["1 / 2", "0.140 ± 0.085", "—", "—"]
    semi = "1k labelled + 49k unlabelled"
    assert _row(text, semi, "RTagger after iteration 3")[2:] == ["0 / 1", "0.150", "—", "84.00"]
    assert _row(text, semi, "Tagger")[2] == "0 / 0"
    with pytest.raises(AssertionError, match="no row"):
        _row(text, semi, "RTagger without class task")  # trained in the fully labelled block only
    block = text.split(f"## {full}\n")[1].split("## ")[0]
    assert "**holds**: The RTagger improves over iterations: AMI" in block
    assert "**holds**: The RTagger beats the ConvNet" in block
    assert "**holds**: The classification task speeds up training" in block  # 0.62 ± 0.03 vs 0.14 ± 0.08
    assert "no seed of the RTagger trained" in text.split(f"## {semi}\n")[1]  # claims are about trained models
    assert "classification task" not in text.split(f"## {semi}\n")[1].split("## Per seed")[0]
    assert "rladder-stream reproduce table4 --seeds 2" in text and "test machine" in text
    assert "**6 of 9 runs trained** (steps of training per run: 100)." in text  # RTagger 2, Tagger 1, ConvNet 2, no class 1
    with pytest.raises(ValueError, match="more than one result"):
        table4_markdown(results + [results[0]])


def test_table4_with_the_fully_connected_engines(tmp_path):
    """The dense engine's models fill the same rows and claims; a block without runs is left out; one table holds one
    engine's models; --from-records writes the document and its records without training."""
    import json
    from rladder_stream.reproduce import reproduce_cli_main
    from rladder_stream.reproduce.table4 import engine_of, table4_markdown

    results = [
        _t4_result("tmnist-rtagger-sparse", 0, None, (0.30, 0.40, 0.50), (30.0, 25.0, 20.0)),
        _t4_result("tmnist-rtagger-sparse", 1, None, (0.32, 0.42, 0.52), (31.0, 26.0, 21.0)),
        _t4_result("tmnist-tagger-dense", 0, None, (0.01, 0.01, 0.01), (60.0, 60.0, 60.0)),  # did not group
        _t4_result("tmnist-tagger-dense", 1, None, (0.02, 0.02, 0.02), (62.0, 62.0, 62.0)),
        _t4_result("tmnist-convnet", 0, None, None, (70.0, 70.0, 70.0)),
        _t4_result("tmnist-convnet", 1, None, None, (72.0, 72.0, 72.0)),
    ]
    for result, chance in zip(results[:4], (0.04, 0.04, 0.01, 0.01)):
        result["test"]["ami_shuffled"] = chance
    assert engine_of(results) == "dense" and engine_of(results[4:]) == "conv" and engine_of([]) == "conv"
    text = table4_markdown(results, generated="now")
    full = "50k labelled"
    assert _row(text, full, "RTagger, fully connected engine after iteration 3")[1:5] == [
        "`tmnist-rtagger-sparse`", "2 / 2", "0.510 ± 0.014", "0.040 ± 0.000"]
    assert _row(text, full, "Tagger, fully connected engine")[1:3] == ["`tmnist-tagger-dense`", "0 / 2"]
    assert _row(text, full, "RTagger, fully connected engine without class task")[2] == "0 / 0"
    assert "## 1k labelled" not in text  # no run in that block
    block = text.split(f"## {full}\n")[1].split("## ")[0]
    assert "**holds**: The RTagger beats the ConvNet (by far): lower class error" in block
    assert "**cannot tell**: The RTagger beats the Tagger: higher AMI. no seed of the Tagger, fully connected engine trained" in block
    # what the untrained seeds show is said beside the verdict, which stays "cannot tell"
    assert ("; their chance levels (shuffled truth): RTagger, fully connected engine 0.04000 ± 0.00000, Tagger, "
            "fully connected engine 0.01000 ± 0.00000") in block
    assert ("**cannot tell**: The Tagger beats the ConvNet (by far): lower class error. no seed of the Tagger, fully "
            "connected engine trained; over all finished seeds, untrained ones included: holds, ConvNet 71.00 ± 1.41 vs "
            "Tagger 61.00 ± 1.41: higher by 10.00 > 2.83 (sum of the stds).") in block
    with pytest.raises(ValueError, match="mix the conv and the dense engines"):
        table4_markdown(results + [_t4_result("tmnist-rtagger", 0, None, (0.1, 0.1, 0.1), (50.0, 50.0, 50.0))])

    records = tmp_path / "records.json"
    records.write_text(json.dumps(results))
    doc = tmp_path / "table4-dense.md"
    assert reproduce_cli_main(["table4", "--from-records", str(records), "--doc", str(doc)]) == 0
    assert "`tmnist-rtagger-sparse`" in doc.read_text() and json.loads(doc.with_suffix(".json").read_text()) == results
    records.write_text(json.dumps(results + [_t4_result("tmnist-rtagger", 0, None, (0.1, 0.1, 0.1), (50.0,) * 3)]))
    with pytest.raises(SystemExit):  # the mixed engines: the command's one-line error
        reproduce_cli_main(["table4", "--from-records", str(records), "--doc", str(doc)])


def test_table4_plan_by_engine_and_block(tmp_path):
    from rladder_stream.reproduce.table4 import plan_table4

    table, _ = plan_table4(1, "tiny", None, [], tmp_path, engine="dense", blocks=["labelled-50k"])
    assert [c.model for c in table] == ["tmnist-rtagger-sparse", "tmnist-tagger-dense", "tmnist-convnet",
                                        "tmnist-rtagger-sparse-noclass"]
    assert {c.labelled for c in table} == {None} and all("/labelled-50k/" in c.out for c in table)
    table, _ = plan_table4(1, "tiny", None, [], tmp_path, engine="dense", blocks=["labelled-1k"])
    assert {c.labelled for c in table} == {1000} and len(table) == 3  # no run without the class task there
    with pytest.raises(ValueError, match="engine must be one of"):
        plan_table4(1, "tiny", None, [], tmp_path, engine="sparse")
    with pytest.raises(ValueError, match="blocks must be some of"):
        plan_table4(1, "tiny", None, [], tmp_path, blocks=["labelled-2k"])


def test_moving_mnist_markdown_sits_beside_the_paper():
    from rladder_stream.reproduce.table4 import moving_mnist_markdown

    results = [{"model": "mmnist-rtagger", "seed": s, "steps": 10, "test": {"ami": a, "ami_19": a + 0.1, "prediction_mse": 0.01}}
               for s, a in enumerate((0.4, 0.6))]
    results += [{"model": "mmnist-tagger", "seed": s, "steps": 10, "test": {"ami": a, "ami_19": a, "prediction_mse": 0.02}}
                for s, a in enumerate((0.05, 0.3, 0.02))]  # one of three trained
    text = moving_mnist_markdown(results + [_t4_result("tmnist-convnet", 0, None, None, (70.0,))])
    assert text == moving_mnist_markdown(list(reversed(results)))  # pure, order-free (the convnet is not in it)

    def cells(label: str) -> list[str]:
        row = next(line for line in text.splitlines() if line.startswith(f"| {label} |"))
        return [c.strip() for c in row.strip("|").split("|")][2:]

    assert cells("RTagger") == ["2 / 2", "0.500 ± 0.141", "0.600 ± 0.141", "—", "0.01000 ± 0.00000", "AMI 0.75"]
    diverged = {"model": "mmnist-tagger", "seed": 3, "steps": 10, "test": {"ami": math.nan, "ami_1": 0.01, "ami_2": math.nan}}
    assert "seed 3: diverged: non-finite outputs from frame 2 on after 10 steps" in moving_mnist_markdown([diverged])
    assert cells("Tagger")[:2] == ["1 / 3", "0.123 ± 0.154"] and cells("Tagger")[-1] == "trained in 1 of 3 seeds"
    with pytest.raises(ValueError, match="more than one result"):
        moving_mnist_markdown(results + [results[0]])


def test_table4_plan_and_cli_checks(tmp_path):
    from rladder_stream.reproduce import reproduce_cli_main
    from rladder_stream.reproduce.table4 import plan_table4

    table, moving = plan_table4(2, "tiny", 30.0, ["epochs=2"], tmp_path, moving_seeds=1)
    assert len(table) == (2 * 3 + 1) * 2 and len(moving) == 2 * 1  # + the RTagger without class task; 2 models on video
    assert sum(c.model == "tmnist-rtagger-noclass" for c in table) == 2 and {c.labelled for c in table if "noclass" in c.model} == {None}
    assert {c.model for c in moving} == {"mmnist-rtagger", "mmnist-tagger"}
    assert {c.labelled for c in table} == {None, 1000} and all(c.epochs == 2 and c.time_budget_s == 30.0 for c in table)
    assert len({c.out for c in table + moving}) == len(table) + 2
    with pytest.raises(ValueError, match="labelled"):
        plan_table4(1, "tiny", None, ["labelled=100"], tmp_path)
    # settings for the video runs only: after --set, and not for the image runs
    table, moving = plan_table4(1, "tiny", None, ["batch_size=32", "lr=0.001", "input_noise=0.2"], tmp_path, 1,
                                ["batch_size=4", "input_noise=0.0"])
    assert {(c.batch_size, c.lr, c.model_overrides["input_noise"]) for c in table} == {(32, 0.001, 0.2)}
    assert {(c.batch_size, c.lr, c.model_overrides["input_noise"]) for c in moving} == {(4, 0.001, 0.0)}
    with pytest.raises(ValueError, match="--seeds, not --moving-set"):
        plan_table4(1, "tiny", None, [], tmp_path, 1, ["seed=3"])
    with pytest.raises(SystemExit):
        reproduce_cli_main(["table4", "--set", "bogus=1", "--out", str(tmp_path)])


# ------------------------------------------------------------------------------ pictures (Figures 6 and 7)


@pytest.mark.usefixtures("embedded_data")
@pytest.mark.parametrize("env_id, name", [("rladder_stream/TexturedMNIST-v0", "tmnist-rtagger"),
                                          ("rladder_stream/MovingMNIST-v0", "mmnist-rtagger")])
def test_grouping_pictures(tmp_path, env_id, name):
    import gymnasium as gym
    from PIL import Image

    import rladder_stream.envs  # noqa: F401  (registers the environments)
    from rladder_stream.apps.figures import colour_by_group, grouping_figures, record_grouping

    model = build_model(get_config(name, size="tiny"))
    record = record_grouping(Predictor(model), gym.make(env_id, split="test"), index=1)
    k = model.config.groups
    assert record.groups.shape[1] == k and record.groups.shape[0] == len(record.observed) - 1
    paths = grouping_figures(record, tmp_path, "example")
    assert [p.suffix for p in paths] == ([".png"] if "Textured" in env_id else [".png", ".gif"])
    assert all(Image.open(p).size[0] > 100 for p in paths)
    # colours: a pixel wholly in group g is drawn in group g's colour; an inkless pixel is white
    image = np.array([[1.0, 0.0]], np.float32)
    rgb = colour_by_group(image, np.array([[[1.0, 1.0]], [[0.0, 0.0]]], np.float32))
    assert tuple(rgb[0, 1]) == (255, 255, 255) and tuple(rgb[0, 0]) == (230, 97, 1)
    with pytest.raises(ValueError, match="masks"):
        colour_by_group(image, np.ones((2, 3, 3), np.float32))


def test_true_groups_are_coloured_as_the_model_group_that_found_them():
    from rladder_stream.apps.figures import truth_masks_matched

    truth = np.array([[0, 0, 1, 2], [-1, 1, 2, 2]])
    model = np.stack([truth == 2, truth == 0, truth == 1]).astype(np.float32)  # the model's ids: 0->1, 1->2, 2->0
    matched = truth_masks_matched(truth, model * 0.8 + 0.1)
    np.testing.assert_array_equal(matched[:, truth >= 0], model[:, truth >= 0])
    assert matched[:, 1, 0].sum() == 0  # an ignored pixel belongs to no group
    # more groups than the exact search takes: the greedy matching finds the same renumbering
    truth8 = np.arange(8).reshape(2, 4)
    order = np.array([3, 0, 7, 1, 6, 2, 5, 4])
    model8 = np.stack([truth8 == order[g] for g in range(8)]).astype(np.float32)
    np.testing.assert_array_equal(truth_masks_matched(truth8, model8), model8)


def test_benchmark_leaves_out_the_groups_the_environment_names():
    from test_predictors_benchmark import _GroupsEnv, _GroupsPredictor

    from rladder_stream.apps.benchmark import benchmark

    env = _GroupsEnv()
    env.correct = True
    assert benchmark(env, _GroupsPredictor(), 2).ami == pytest.approx(0.5)
    env.ami_ignore = (-1, 0)  # as Moving MNIST: background left out; what is left is one group, matched exactly
    assert benchmark(env, _GroupsPredictor(), 2).ami == pytest.approx(1.0)


def test_binary_error_signal_is_the_gradient_of_the_mixture_log_likelihood():
    """Binary inputs: δz_k = m_k (1 - 2n) / (ξ - 1 + x) is d/dz_k of log p(x), p the flipped mixture's chance of x;
    and L(m) is the softmax of each group's own log-likelihood of x. Checked against autograd."""
    cfg = get_config("shapes-rtagger", size="tiny")
    model = build_model(cfg)
    n = cfg.input_noise
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(2, *cfg.obs_shape, generator=gen) < 0.3).float()
    z = torch.rand(2, cfg.groups, *cfg.obs_shape, generator=gen).requires_grad_(True)
    m = torch.softmax(torch.randn(2, cfg.groups, *cfg.obs_shape, generator=gen), dim=1)
    inputs = model.tagger_inputs(x, z, m)
    ink = (m * (z * (1 - 2 * n) + n)).sum(1)
    log_p = torch.where(x > 0.5, torch.log(ink), torch.log1p(-ink)).sum()
    (grad,) = torch.autograd.grad(log_p, z)
    torch.testing.assert_close(inputs[:, :, 2], grad)
    q = z.detach() * (1 - 2 * n) + n
    own = torch.where(x.unsqueeze(1) > 0.5, q, 1 - q)
    torch.testing.assert_close(inputs[:, :, 3], own / own.sum(1, keepdim=True))


def test_binary_mixture_cost_is_the_cross_entropy_of_the_mixture_hand_computed():
    from rladder_stream.model.tagger import group_mixture_bce

    masks = torch.tensor([0.25, 0.75]).reshape(1, 1, 2, 1, 1).expand(1, 1, 2, 1, 2).contiguous()
    recon = torch.tensor([[0.8, 0.1], [0.4, 0.6]]).reshape(1, 1, 2, 1, 2)
    targets = torch.tensor([1.0, 0.0]).reshape(1, 1, 1, 2)
    mean = [0.25 * 0.8 + 0.75 * 0.4, 0.25 * 0.1 + 0.75 * 0.6]  # 0.5, 0.475
    hand = -(math.log(mean[0]) + math.log(1 - mean[1]))
    cost = group_mixture_bce({"groups": masks, "reconstructions": recon}, targets)
    assert cost.item() == pytest.approx(hand, rel=1e-6)


def test_flip_noise_flips_the_asked_share_of_pixels_once_per_image():
    from rladder_stream.training.tasks import ShapesTask

    task = ShapesTask(get_config("shapes-rtagger", size="tiny"))
    x = (torch.rand(64, 3, 20, 20) < 0.3).float()
    torch.manual_seed(0)
    noisy = task.add_input_noise(x, 0.2)
    assert set(noisy.unique().tolist()) <= {0.0, 1.0}
    flipped = noisy != x
    assert abs(flipped.float().mean().item() - 0.2) < 0.01
    assert torch.equal(flipped[:, 0], flipped[:, 2])  # the same corruption at every iteration


def test_the_learned_projection_is_the_engines_bottom_lateral_and_trains():
    from rladder_stream.model.tagger import group_mixture_nll

    cfg = get_config("tmnist-rtagger", size="tiny", tagger_projection=6)
    model = build_model(cfg)
    assert model.engine.config.in_channels == 6 and model.z_head.in_channels == 6
    x = torch.rand(2, 3, *cfg.obs_shape)
    group_mixture_nll(model(x)[0], x).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.projection.parameters())


def test_batch_statistics_norm_evaluates_as_it_trains():
    """norm=batch_stats: the batch's own statistics in training and evaluation alike (the reference Tagger's
    test-time batch norm), so eval mode gives the training forward's outputs exactly and keeps no running averages
    pooled over iterations whose statistics differ."""
    torch.manual_seed(0)
    model = build_model(get_config("tmnist-rtagger", size="tiny", norm="batch_stats"))
    assert not any(m.track_running_stats for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    x = torch.rand(4, 3, 32, 32)
    state = model.init_state(4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        train_out, _ = model.train()(x, state)
        eval_out, _ = model.eval()(x, state)
    for k in ("groups", "reconstructions", "class_logits"):
        torch.testing.assert_close(eval_out[k], train_out[k], rtol=0, atol=0)


@pytest.mark.parametrize("name", ["tmnist-rtagger", "shapes-tagger-dense"])
def test_running_statistics_keep_a_streams_output_independent_of_its_batch(name):
    """norm=batch and batch_tick (running statistics, docs/design.md "Batch normalisation at evaluation"): in eval mode
    a stream's groupings are the same alone and in a batch of other images; with norm=batch_stats they are not."""

    def first_row(norm: str, rows: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = build_model(get_config(name, size="tiny", norm=norm)).double()  # double: no rounding by batch size
        _perturb(model)
        x = torch.rand(4, 3, *model.config.obs_shape, generator=torch.Generator().manual_seed(2), dtype=torch.double)
        state = model.init_state(4, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            model.train()(x, state)  # running statistics that are not the initial ones
            out, _ = model.eval()(x[:rows], {k: v[:rows] for k, v in state.items()})
        return {k: out[k][0] for k in ("groups", "reconstructions")}

    for norm in ("batch", "batch_tick"):
        alone, batched = first_row(norm, 1), first_row(norm, 4)
        for k in alone:
            torch.testing.assert_close(alone[k], batched[k], rtol=1e-9, atol=1e-10)
    alone, batched = first_row("batch_stats", 2), first_row("batch_stats", 4)
    assert not torch.allclose(alone["groups"], batched["groups"], atol=1e-4)


@pytest.mark.parametrize("name", ["shapes-tagger-dense", "shapes-rtagger-dense"])
def test_a_dense_engine_sees_the_whole_image_as_one_vector(name):
    """tagger_engine=dense (the reference's fully connected Ladder): each group's 4 inputs of every pixel are one
    vector (the engine's maps have length 1), so after one iteration a corner's reconstruction already depends on
    the opposite corner's pixel through the bottom level itself."""
    cfg = get_config(name, size="tiny")
    model = _tagger(name)
    assert model.engine.config.obs_shape == (1,) and model.engine.config.in_channels == cfg.tagger_projection
    assert model.projection[0].in_channels == 4 * 20 * 20 and model.z_head.out_channels == 20 * 20

    def corner_sensitivity(tagger: RTagger) -> float:
        x = torch.full((2, 20, 20), 0.3, dtype=torch.double, requires_grad=True)
        state = tagger.init_state(2, generator=torch.Generator().manual_seed(0))
        out, _ = tagger.step(x, state)
        (grad,) = torch.autograd.grad(out["reconstructions"][:, :, 0, 0].sum(), x)
        return grad[:, 19, 19].abs().sum().item()

    assert corner_sensitivity(model) > 1e-6
    assert all(shape[1:] == (1,) for key, shape in model.engine.state_spec().items() if key.startswith(("enc", "dec")))


def test_a_dense_engine_needs_vector_levels():
    with pytest.raises(ValueError, match="kernel=1 and pool=1"):
        get_config("shapes-tagger", size="tiny", tagger_engine="dense")
    with pytest.raises(ValueError, match="tagger_engine"):
        get_config("shapes-tagger", size="tiny", tagger_engine="sparse")


def test_a_logit_feed_gives_the_engine_the_pre_sigmoid_reconstruction():
    """tagger_z_feed=logit (the reference's z_hat_pre_bin): the engine's z channel is logit(ẑ), the other three
    channels are unchanged; the feed needs binary inputs."""
    cfg = get_config("shapes-tagger-dense", size="tiny")
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(2, *cfg.obs_shape, generator=gen) < 0.3).float()
    z = torch.rand(2, cfg.groups, *cfg.obs_shape, generator=gen) * 0.98 + 0.01
    m = torch.softmax(torch.randn(2, cfg.groups, *cfg.obs_shape, generator=gen), dim=1)
    plain = build_model(cfg).tagger_inputs(x, z, m)
    fed = build_model(cfg.replace(tagger_z_feed="logit")).tagger_inputs(x, z, m)
    torch.testing.assert_close(fed[:, :, 0], torch.log(z / (1 - z)))
    torch.testing.assert_close(torch.sigmoid(fed[:, :, 0]), plain[:, :, 0])
    torch.testing.assert_close(fed[:, :, 1:], plain[:, :, 1:])
    with pytest.raises(ValueError, match="binary"):
        get_config("tmnist-rtagger", size="tiny", tagger_z_feed="logit")
    with pytest.raises(ValueError, match="tagger_z_feed"):
        cfg.replace(tagger_z_feed="odds")


def test_a_pixel_affine_gives_each_pixel_its_own_reconstruction_shift():
    """tagger_affine=pixel: c_1 and b_1 are maps of the image's shape (the reference's), so one pixel's shift moves
    that pixel's reconstruction logit and no other; shared keeps one scalar each."""
    cfg = get_config("shapes-tagger-dense", size="tiny")
    assert build_model(cfg).z_shift.shape == ()
    model = build_model(cfg.replace(tagger_affine="pixel")).double().eval()
    assert model.z_scale.shape == model.z_shift.shape == cfg.obs_shape
    x = (torch.rand(2, *cfg.obs_shape, dtype=torch.double) < 0.3).double()
    state = model.init_state(2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model.step(x, state)[0]["reconstructions"]
        model.z_shift[3, 5] += 1.0
        after = model.step(x, state)[0]["reconstructions"]
    changed = (torch.logit(after) - torch.logit(before)).abs() > 1e-9
    assert changed[:, :, 3, 5].all() and changed.sum() == changed[:, :, 3, 5].numel()
    torch.testing.assert_close(torch.logit(after)[:, :, 3, 5] - torch.logit(before)[:, :, 3, 5],
                               torch.ones_like(before[:, :, 3, 5]))
    with pytest.raises(ValueError, match="tagger_affine"):
        cfg.replace(tagger_affine="channel")


@pytest.mark.parametrize("name", ["shapes-tagger", "shapes-rtagger-dense"])
def test_per_tick_statistics_follow_each_streams_own_tick(name):
    """norm=batch_tick: training fills one row of statistics per iteration (rows differ: the first iteration sees a
    constant z); the state counts each stream's ticks up to the last row; in a batch of streams of different ages
    (one just reset) every stream gets what it gets alone."""
    torch.manual_seed(0)
    model = build_model(get_config(name, size="tiny", norm="batch_tick", norm_ticks=3))
    _perturb(model)
    x = (torch.rand(8, 4, 20, 20, generator=torch.Generator().manual_seed(2)) < 0.3).float()
    state = model.init_state(8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(state["tick"], torch.zeros(8))
    with torch.no_grad():
        _, after = model.train()(x, state)
    assert torch.equal(after["tick"], torch.full((8,), 2.0))  # 4 ticks, capped at the last of 3 rows
    norm = model.tick_norms[0]
    assert norm.rows_trained.item() == 3 and not torch.allclose(norm.running_mean[0], norm.running_mean[1], atol=1e-4)

    model.eval()
    old = model.init_state(1, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for t in range(2):
            _, old = model.step(x[1:2, t], old)
        fresh = model.init_state(1, generator=torch.Generator().manual_seed(4))
        both = {k: torch.cat([fresh[k], old[k]]) for k in fresh}
        together, _ = model.step(x[:2, 2], both)
        alone = [model.step(x[i : i + 1, 2], s)[0] for i, s in enumerate((fresh, old))]
    for i in range(2):
        for k in ("groups", "reconstructions"):
            torch.testing.assert_close(together[k][i], alone[i][k][0], rtol=1e-5, atol=1e-6)


def test_per_tick_statistics_are_an_rtagger_setting():
    """An RLadder has no tick in its state to select statistics with: building one with batch_tick says so."""
    with pytest.raises(ValueError, match="batch_tick"):
        build_model(get_config("omm-rladder", size="tiny", norm="batch_tick"))
    with pytest.raises(ValueError, match="norm_ticks"):
        get_config("shapes-tagger", size="tiny", norm="batch_tick", norm_ticks=0)


def test_class_beliefs_sum_the_groups_and_drop_none_even_when_every_group_says_none():
    """A hand-computed case: two groups over classes (a, b, none) with probabilities (0.5, 0.25, 0.25) and
    (0.1, 0.1, 0.8) sum to (0.6, 0.35, 1.05); without "none", normalised: (0.6, 0.35) / 0.95. Logits at which
    every group is sure of "none" (probabilities below float64's smallest) still give a distribution, the
    classes in the ratio of their logits."""
    from rladder_stream.model.tagger import group_class_beliefs

    probs = torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]], dtype=torch.float64)
    beliefs = group_class_beliefs(probs.log())
    torch.testing.assert_close(beliefs.exp(), torch.tensor([[0.6, 0.35]], dtype=torch.float64) / 0.95)
    sure_of_none = torch.tensor([[[0.0, -1.0, 2000.0], [-3.0, -3.0, 2000.0]]], dtype=torch.float64)
    beliefs = group_class_beliefs(sure_of_none)
    assert torch.isfinite(beliefs).all()
    torch.testing.assert_close(beliefs.exp().sum(-1), torch.ones(1, dtype=torch.float64))
    assert beliefs[0, 0] > beliefs[0, 1]


def test_gaussian_reconstructions_stay_bounded_and_a_long_stream_finite():
    """The Gaussian groups' reconstructions are clamped to GAUSSIAN_Z_RANGE (unchanged inside it), so weights that
    blow the reconstructions up (here the output scale x1000) give a bounded, finite stream of 40 ticks; the binary
    groups' stay in (0, 1) as before."""
    from rladder_stream.model.tagger import GAUSSIAN_Z_RANGE

    model = _tagger("tmnist-rtagger")
    x = torch.rand(2, 4, 32, 32, dtype=torch.float64)
    state = model.init_state(2, generator=torch.Generator().manual_seed(0))
    plain, _ = model(x, {k: v.clone() for k, v in state.items()})
    with torch.no_grad():
        model.z_scale.mul_(1000.0)
    scaled, _ = model(x.repeat(1, 10, 1, 1), state)
    z = scaled["reconstructions"]
    assert torch.isfinite(z).all() and all(torch.isfinite(v).all() for v in scaled.values())
    low, high = GAUSSIAN_Z_RANGE
    assert z.min() == low and z.max() == high  # saturated, both ways
    assert low < plain["reconstructions"].min() and plain["reconstructions"].max() < high  # the usual range: untouched
    binary, _ = _tagger("shapes-tagger")(torch.rand(2, 3, 20, 20, dtype=torch.float64).round())
    assert 0 < binary["reconstructions"].min() and binary["reconstructions"].max() < 1
