"""The RLadder's step: shapes, equivalences, gradients, and what each ablation switch removes."""

from __future__ import annotations

import pytest
import torch

from rladder_stream.model.config import LadderConfig
from rladder_stream.model.registry import build_model, get_config, list_configs


def _perturb(model: torch.nn.Module, scale: float = 0.3) -> None:
    """Move every parameter off its initial value (the Ladder init has a1 = a6 = 0, which zeroes some gradients)."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))


def test_every_config_builds_steps_and_backpropagates(tiny_config: LadderConfig):
    model = build_model(tiny_config)
    _perturb(model)
    x = torch.rand(3, 4, *tiny_config.obs_shape)
    outputs, state = model(x)
    assert set(state) == set(model.state_spec())
    for name, value in outputs.items():
        assert value.shape[:2] == (3, 4), name
        assert torch.isfinite(value).all(), name
    if tiny_config.n_classes:
        assert outputs["class_logits"].shape == (3, 4, tiny_config.n_classes)
    if tiny_config.predict:
        assert outputs["prediction_logits"].shape == (3, 4, *tiny_config.obs_shape)
    # Every parameter is connected to some output: the sum of all outputs reaches all of them.
    sum(v.square().mean() for v in outputs.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"parameters without gradient: {missing}"


def test_step_is_pure():
    model = build_model(get_config("omm-rladder", size="tiny"))
    state = model.init_state(2)
    before = {k: v.clone() for k, v in state.items()}
    model.step(torch.rand(2, 32, 32), state)
    assert all(torch.equal(before[k], state[k]) for k in state)


@pytest.mark.parametrize("name", ["omm-rladder", "music-rladder", "omm-temporal"])
def test_sequence_split_in_two_equals_whole_float64(name):
    model = build_model(get_config(name, size="tiny")).double().eval()
    _perturb(model)
    x = torch.rand(2, 7, *model.config.obs_shape, dtype=torch.float64)
    whole, final = model(x)
    first, mid = model(x[:, :3])
    second, final2 = model(x[:, 3:], mid)
    for k in whole:
        torch.testing.assert_close(torch.cat([first[k], second[k]], 1), whole[k], atol=1e-6, rtol=0)
    for k in final:
        torch.testing.assert_close(final2[k], final[k], atol=1e-6, rtol=0)


def test_decoder_to_encoder_switch_removes_exactly_that_connection():
    on = build_model(get_config("omm-rladder", size="tiny"))
    concatenated = build_model(get_config("omm-rladder", size="tiny", decoder_to_encoder_entry="input"))
    off = build_model(get_config("omm-rladder", size="tiny", decoder_to_encoder=False))
    cfg = on.config
    widths = [1] + [lv.channels for lv in cfg.levels]
    for l, (enc_on, enc_cat, enc_off) in enumerate(zip(on.encoders, concatenated.encoders, off.encoders)):
        assert enc_off.input_transform.in_channels == enc_on.input_transform.in_channels == widths[l]
        assert enc_cat.input_transform.in_channels == widths[l] + widths[l + 1]
        # the default entry: d^{t-1} through its own transform and its own normalisation into the gates
        transform, norm = on.feedback[l]
        assert transform.in_channels == widths[l + 1] and transform.out_channels == enc_on.gate_channels
        assert isinstance(norm, torch.nn.GroupNorm)
    assert off.feedback is None and concatenated.feedback is None
    assert not any(k.startswith(("dec", "top_dec")) for k in off.state_spec())
    assert off.top_encoder.input_transform.in_features == cfg.top_input_features

    # Functional check: with the connection off, the encoder (hence the class output) ignores the decoder.
    x = torch.rand(2, 4, 32, 32)
    for model, depends in ((on, True), (off, False)):
        model.eval()
        _perturb(model)
        before = model(x)[0]["class_logits"]
        with torch.no_grad():
            for p in model.decoders.parameters():
                p.mul_(-2.0)
        after = model(x)[0]["class_logits"]
        torch.testing.assert_close(before[:, 0], after[:, 0])  # tick 1 never sees a decoder output
        assert (not torch.allclose(before[:, 1:], after[:, 1:])) == depends


def test_feedback_entering_the_gates_bypasses_the_normalised_input_transform():
    cfg = get_config("omm-rladder", size="tiny", decoder_to_encoder_entry="gates")
    model = build_model(cfg).double().eval()
    _perturb(model)
    widths = [1] + [lv.channels for lv in cfg.levels]
    for l, (encoder, feedback) in enumerate(zip(model.encoders, model.feedback)):
        assert encoder.input_transform.in_channels == widths[l]  # bottom-up input only
        assert (feedback.in_channels, feedback.out_channels) == (widths[l + 1], encoder.gate_channels)
    assert model.top_encoder.input_transform.in_features == cfg.top_input_features
    assert set(model.state_spec()) == set(build_model(get_config("omm-rladder", size="tiny")).state_spec())

    # The fed-back map is added to the gates after the norm: with every other input fixed, the gates move
    # linearly in d^{t-1}, so doubling a nonzero feedback doubles its effect on the level-1 gate pre-activations.
    x = torch.rand(2, 32, 32, dtype=torch.float64)
    state = {k: 0.3 * torch.randn_like(v) for k, v in model.init_state(2).items()}
    encoder, feedback = model.encoders[0], model.feedback[0]
    seen = []
    hook = encoder.register_forward_hook(lambda m, args, out: seen.append(args[2]))
    for scale in (1.0, 2.0):
        model.step(x, state | {"dec1.prev": scale * state["dec1.prev"]})
    hook.remove()
    torch.testing.assert_close(seen[1], 2 * seen[0])
    torch.testing.assert_close(seen[0], feedback(state["dec1.prev"]))
    # ... and streaming still equals the whole sequence.
    seq = torch.rand(2, 5, 32, 32, dtype=torch.float64)
    whole, _ = model(seq)
    first, mid = model(seq[:, :2])
    second, _ = model(seq[:, 2:], mid)
    torch.testing.assert_close(torch.cat([first["class_logits"], second["class_logits"]], 1), whole["class_logits"])


@pytest.mark.parametrize("entry", ["input", "gates"])
def test_detached_feedback_carries_values_but_no_gradient(entry):
    outputs = {}
    for detach in (False, True):
        torch.manual_seed(0)
        model = build_model(get_config("omm-rladder", size="tiny", decoder_to_encoder_entry=entry,
                                       decoder_to_encoder_detach=detach)).eval()
        _perturb(model)
        state = {k: (0.3 * torch.randn_like(v)).requires_grad_() for k, v in model.init_state(2).items()}
        out, _ = model.step(torch.rand(2, 32, 32), state)
        out["class_logits"].sum().backward()
        fed_back = [state[k].grad for k in state if k.startswith(("dec", "top_dec"))]
        if detach:
            assert all(g is None for g in fed_back)
        else:
            assert all(g is not None and g.abs().sum() > 0 for g in fed_back)
        assert state["enc1.h"].grad is not None  # the encoder's own state is trained through either way
        outputs[detach] = out["class_logits"].detach()
    torch.testing.assert_close(outputs[False], outputs[True])  # the same values go forward


def test_unknown_feedback_entry_is_refused():
    with pytest.raises(ValueError, match="decoder_to_encoder_entry"):
        get_config("omm-rladder", size="tiny", decoder_to_encoder_entry="sideways")


def test_decoder_switch_and_baselines_are_the_same_blocks():
    hrnn = build_model(get_config("omm-hrnn", size="tiny"))
    full = build_model(get_config("omm-rladder", size="tiny"))
    assert not hasattr(hrnn, "decoders") and not hasattr(hrnn, "top_decoder")
    # The hierarchical RNN is exactly the RLadder's encoder without decoder inputs.
    assert set(hrnn.state_spec()) == {k for k in full.state_spec() if k.startswith(("enc", "top."))}
    temporal = build_model(get_config("omm-temporal", size="tiny"))
    assert set(temporal.state_spec()) == {"top.h", "top.c"}  # recurrence at the top only
    static = build_model(get_config("omm-static", size="tiny"))
    assert static.state_spec() == {}


def test_static_classifier_ignores_the_past():
    model = build_model(get_config("omm-static", size="tiny")).eval()
    x = torch.rand(2, 3, 32, 32)
    y = x.clone()
    y[:, :2] = torch.rand(2, 2, 32, 32)  # different past, same last frame
    torch.testing.assert_close(model(x)[0]["class_logits"][:, -1], model(y)[0]["class_logits"][:, -1])


def test_temporal_baseline_remembers_the_past():
    model = build_model(get_config("omm-temporal", size="tiny")).eval()
    _perturb(model)
    x = torch.rand(2, 3, 32, 32)
    y = x.clone()
    y[:, 0] = torch.rand(2, 32, 32)
    assert not torch.allclose(model(x)[0]["class_logits"][:, -1], model(y)[0]["class_logits"][:, -1])


def test_cost_weight_ablations_keep_the_architecture():
    base = get_config("omm-rladder", size="tiny")
    for name, field in (("omm-rladder-no-prediction", "prediction_weight"), ("omm-rladder-no-classification", "class_weight")):
        cfg = get_config(name, size="tiny")
        assert getattr(cfg, field) == 0.0 and getattr(base, field) > 0
        assert cfg.replace(name=base.name, probe=base.probe, **{field: getattr(base, field)}) == base


def test_probe_gradient_is_stopped():
    model = build_model(get_config("omm-rladder", size="tiny"))
    _perturb(model)
    outputs, _ = model(torch.rand(2, 2, 32, 32))
    outputs["probe_logits"].sum().backward()
    touched = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert touched == {"probe_head"}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"decoder": False}, "prediction and probe"),
        ({"predict": False, "probe": False, "decoder": False}, "decoder_to_encoder"),
        ({"obs_shape": (30, 30)}, "divisible"),
        ({"decoder_cell": "nope"}, "decoder_cell"),
        ({"norm": "instance"}, "norm"),
    ],
)
def test_inconsistent_configs_are_rejected(changes, message):
    with pytest.raises(ValueError, match=message):
        get_config("omm-rladder", size="tiny", **changes)


def test_config_round_trips_through_plain_data(tiny_config):
    assert LadderConfig.from_dict(tiny_config.to_dict()) == tiny_config
    with pytest.raises(ValueError, match="unknown config fields"):
        LadderConfig.from_dict({**tiny_config.to_dict(), "bogus": 1})


def _level_of(name: str) -> str | None:
    """The encoder or decoder level a parameter belongs to (``encoders.0``, ``top_encoder``, ``decoders.2``,
    ``top_decoder``, with an RTagger's ``engine.`` prefix dropped), or None for heads and feedback transforms."""
    name = name.removeprefix("engine.")
    parts = name.split(".")
    if parts[0] in ("encoders", "decoders"):
        return ".".join(parts[:2])
    if parts[0] in ("top_encoder", "top_decoder"):
        return parts[0]
    return None


DECODER_CONFIGS = [n for n in list_configs() if get_config(n, size="tiny").decoder]


@pytest.mark.parametrize("name", DECODER_CONFIGS)
def test_at_init_the_low_level_cost_reaches_every_encoder_and_decoder_level(name):
    """Open combinators (the default): the bottom cost alone (prediction or denoising, not the class cost) sends
    gradient into the parameters of every encoder level and every decoder level at initialisation. Started
    closed, it reached no level above the bottom (the Table 1 RLadder was its encoder plus a local predictor)."""
    from rladder_stream.model.tagger import group_mixture_nll
    from rladder_stream.training.losses import bernoulli_nll

    torch.manual_seed(0)
    model = build_model(get_config(name, size="tiny"))
    cfg = model.config
    x = torch.rand(4, 3, *cfg.obs_shape)
    outputs, _ = model(x)
    cost = group_mixture_nll(outputs, x) if cfg.groups else bernoulli_nll(outputs["prediction_logits"], x)
    cost.backward()
    norms: dict[str, float] = {}
    for param_name, p in model.named_parameters():
        level = _level_of(param_name)
        if level is not None:
            norms[level] = norms.get(level, 0.0) + (0.0 if p.grad is None else p.grad.norm().item() ** 2)
    dead = sorted(level for level, n in norms.items() if not n > 0)
    assert len(norms) >= 4 and not dead, f"levels without gradient at init: {dead}"


def test_started_closed_the_low_level_cost_sends_no_gradient_above_the_bottom():
    """The failure the open start fixes, kept as a known answer: closed combinators zero the gradient of every
    level above the bottom decoder."""
    from rladder_stream.training.losses import bernoulli_nll

    model = build_model(get_config("omm-rladder", size="tiny", decoder_init="closed"))
    x = torch.rand(2, 3, 32, 32)
    bernoulli_nll(model(x)[0]["prediction_logits"], x).backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for n, p in model.named_parameters() if n.startswith("encoders."))
