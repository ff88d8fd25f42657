"""The grouping documents (rladder_stream.reproduce.grouping: Shapes, Brodatz-textured MNIST): pure functions of the
runs' records, their claim rule, and the command that re-derives them from committed records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_experiment

from rladder_stream.apps.cli import main as cli_main
from rladder_stream.reproduce.common import Stat
from rladder_stream.reproduce.grouping import (BRODATZ, SHAPES, TARGET_AMI, claim_at_least, grouping_markdown,
                                               plan_grouping)


def _record(model: str, seed: int, amis: tuple[float, ...], shuffled: float, history: tuple[float, ...] = ()) -> dict:
    test = {f"ami_{i}": a for i, a in enumerate(amis, start=1)} | {"ami_shuffled": shuffled}
    return {"model": model, "size": "cpu", "seed": seed, "steps": 1000 + seed, "train_time_s": 60.0, "test": test,
            "hardware": "CPU test", "data": "Shapes",
            "valid_history": [{"step": 100 * (i + 1), f"ami_{len(amis)}": a} for i, a in enumerate(history)]}


def test_the_document_is_a_pure_function_of_the_records():
    records = [_record("shapes-tagger-dense", s, (0.2 + s / 100, 0.5, 0.7 + s / 100), 0.3, (0.4, 0.6)) for s in range(3)]
    records.append(_record("shapes-rtagger", 0, (0.05, 0.06, 0.07), 0.05))
    doc = grouping_markdown(SHAPES, records, command="rladder-stream reproduce shapes")
    assert doc == grouping_markdown(SHAPES, list(reversed(records)), command="rladder-stream reproduce shapes")
    tagger = next(line for line in doc.splitlines() if line.startswith("| Tagger, fully connected"))
    assert "| 3 | 0.210 ± 0.010 | 0.500 ± 0.000 | 0.710 ± 0.010 | 0.300 ± 0.000 | 1000, 1001, 1002 |" in tagger
    assert "**holds**: `shapes-tagger-dense` groups Shapes" in doc
    assert "**cannot tell with 1 seed**: `shapes-rtagger` groups Shapes" in doc
    assert "Ratio of the means, last-iteration AMI over the shuffled chance level: 2.4." in doc
    assert "| 200 | 0.600 | 0.600 | 0.600 |" in doc  # the validation curve, one column per run with a history
    records[0]["valid_history"][1]["ami_shuffled"] = 0.25
    assert "| 200 | 0.600 (0.250) | 0.600 | 0.600 |" in grouping_markdown(SHAPES, records)  # its chance level beside
    assert "shapes-rtagger-dense" not in doc  # a model without runs is left out


def test_a_longer_test_inference_gets_a_claim_at_the_trained_and_at_the_last_iteration():
    """Runs trained with 3 iterations and tested with 5 (``eval_iterations``): the document says so and judges the
    bar at iteration 3 and at iteration 5; runs trained with different numbers of iterations are refused."""
    records = [_record("shapes-tagger-dense", s, (0.2, 0.4, 0.5 + s / 100, 0.6, 0.7 + s / 100), 0.3) for s in range(3)]
    doc = grouping_markdown(SHAPES, records)
    assert "runs the iterations on to 5 (the data setting `eval_iterations`)" in doc
    assert "**does not hold**: `shapes-tagger-dense` groups Shapes at the last trained iteration (3): test AMI ≥ 0.6" in doc
    assert "**holds**: `shapes-tagger-dense` groups Shapes: test AMI at the last iteration (5) ≥ 0.6" in doc
    records[0]["train_config"] = {"iterations": 5}
    with pytest.raises(ValueError, match="different numbers of iterations"):
        grouping_markdown(SHAPES, records)


@pytest.mark.parametrize("values, verdict", [((0.70, 0.72, 0.74), "holds"), ((0.40, 0.45, 0.50), "does not hold"),
                                             ((0.50, 0.62, 0.74), "cannot tell with 3 seeds"), ((0.9,), "cannot tell with 1 seed")])
def test_the_bar_counts_only_beyond_one_standard_deviation(values, verdict):
    assert claim_at_least("t", "m", Stat(values), TARGET_AMI).verdict == verdict


def test_the_brodatz_document_shows_the_class_error_and_no_bar():
    """Brodatz has no AMI bar: only the chance-level claim; the class error gets a column where runs classify."""
    records = [_record("tmnist-tagger-dense", s, (0.01, 0.02, 0.03), 0.01) | {"data": "Brodatz"} for s in range(3)]
    for s, record in enumerate(records):
        record["test"]["class_error"] = 80.0 + s
    doc = grouping_markdown(BRODATZ, records)
    assert "Brodatz-textured MNIST: does the model group?" in doc
    assert "| 0.010 ± 0.000 | 0.020 ± 0.000 | 0.030 ± 0.000 | 0.010 ± 0.000 | 81.00 ± 1.00 | 1000, 1001, 1002 |" in doc
    assert "≥ 0.6" not in doc and "groups above its shuffled chance level" in doc
    assert "| `tmnist-tagger-dense` | 2 | 0.010 | 0.020 | 0.030 | 0.010 | 82.00 | 1002 |" in doc
    with pytest.raises(ValueError, match="not a Brodatz-textured MNIST model"):
        plan_grouping(BRODATZ, ["shapes-tagger-dense"], 1, "tiny", None, [], ".")


def test_the_plan_refuses_other_models_and_the_flagged_settings(tmp_path):
    runs = plan_grouping(SHAPES, ["shapes-tagger-dense", "shapes-rtagger"], 2, "tiny", 30.0, ["epochs=2", "tagger_z_init=0.3"], tmp_path)
    assert [(r.model, r.seed) for r in runs] == [("shapes-tagger-dense", 0), ("shapes-tagger-dense", 1),
                                                 ("shapes-rtagger", 0), ("shapes-rtagger", 1)]
    assert runs[0].model_overrides == {"tagger_z_init": 0.3} and runs[0].epochs == 2 and runs[0].time_budget_s == 30.0
    with pytest.raises(ValueError, match="not a Shapes model"):
        plan_grouping(SHAPES, ["omm-rladder"], 1, "tiny", None, [], tmp_path)
    with pytest.raises(ValueError, match="--seeds"):
        plan_grouping(SHAPES, ["shapes-tagger"], 1, "tiny", None, ["seed=3"], tmp_path)


@pytest.mark.parametrize("data, model, label", [("shapes", "shapes-tagger-dense", "Tagger, fully connected engine (the reference's)"),
                                               ("brodatz", "tmnist-tagger-dense", "Tagger, fully connected engine (the reference's)")])
def test_the_document_is_re_derived_from_committed_records(tmp_path, capsys, data, model, label):
    records = tmp_path / f"{data}.json"
    records.write_text(json.dumps([_record(model, s, (0.3, 0.65 + s / 50), 0.28) for s in range(2)]))
    doc = tmp_path / f"{data}.md"
    assert cli_main(["reproduce", data, "--from-records", str(records), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert f"| {label} | `{model}` | 2 | 0.300 ± 0.000 | 0.660 ± 0.014 |" in text
    assert f"reproduce {data} --from-records" in text  # the command that made it
    records.write_text("{not json")
    with pytest.raises(SystemExit):
        cli_main(["reproduce", data, "--from-records", str(records), "--doc", str(doc)])
    assert "cannot read records" in capsys.readouterr().err


def test_reproduce_trains_writes_the_document_and_its_records(tmp_path):
    doc, out = tmp_path / "shapes.md", tmp_path / "runs"
    argv = ["reproduce", "shapes", "--models", "shapes-tagger-dense", "--seeds", "1", "--size", "tiny", "--out", str(out),
            "--doc", str(doc), "--set", "epochs=1", "train_sequences=64", "batch_size=32", "valid_sequences=16",
            "test_sequences=16", "eval_batch_size=16"]
    assert cli_main(argv) == 0
    records = json.loads(doc.with_suffix(".json").read_text())
    assert [(r["model"], r["seed"], r["steps"]) for r in records] == [("shapes-tagger-dense", 0, 2)]
    assert (out / "shapes-tagger-dense" / "seed0" / "results.json").exists()
    assert "`shapes-tagger-dense` | 1 |" in doc.read_text()


def _tiny_shapes_run(path) -> dict:
    from rladder_stream.training.train import TrainConfig, train

    run = TrainConfig(model="shapes-tagger-dense", size="tiny", epochs=1, train_sequences=16, batch_size=8, valid_sequences=8,
                      test_sequences=16, eval_batch_size=16, warmup_steps=1, log_every=1, out=str(path))
    return train(run, log=lambda s: None)["test"]


def test_cost_vs_grouping_windows_a_runs_log(tmp_path):
    """experiments/cost_vs_grouping.py: each window's mean training cost and its last validation AMI, by hand."""
    module = load_experiment("cost_vs_grouping")
    rows = ["kind,step,epoch,train_time_s,lr,metric,value"]
    for step, cost in [(100, 10.0), (200, 20.0), (300, 6.0), (400, 2.0)]:
        rows += [f"train,{step},0,0,0.001,low_level,{cost}", f"train,{step},0,0,0.001,total,{cost * 100}"]
    rows += ["valid,150,0,0,,ami_3,0.1", "valid,200,0,0,,ami_3,0.3", "valid,200,0,0,,ami_2,0.9", "valid,400,0,0,,ami_3,0.5"]
    log = tmp_path / "seed7" / "log.csv"
    log.parent.mkdir()
    log.write_text("\n".join(rows) + "\n")
    assert module.windows(*module.read_log(log), 200) == {0: (15.0, 0.3), 200: (4.0, 0.5)}
    text = module.table([log], 200)
    assert "seed7: cost" in text and "| 1-200 | 15.0 | 0.300 |" in text and "| 201-400 | 4.0 | 0.500 |" in text
    assert "| 1-200 | 0.300 |" in module.table([log], 200, ami_only=True)


def test_eval_norm_scores_a_tagger_with_other_batch_statistics(tmp_path, capsys):
    """experiments/eval_norm.py: with the run's own statistics it scores what the run's test recorded; its batch-stats
    twin evaluates as the training-mode forward does (which the model itself does not) with the same weights."""
    import torch

    from rladder_stream.streaming.checkpoint import load_model

    module = load_experiment("eval_norm")
    test = _tiny_shapes_run(tmp_path / "run")
    model = load_model(tmp_path / "run" / "last.pt")
    assert module.amis(model, 16, 16)[:3] == pytest.approx([test["ami_1"], test["ami_2"], test["ami_3"]], abs=1e-6)
    images = torch.rand(8, 3, 20, 20).round()

    def groups(net: torch.nn.Module, mode: bool) -> torch.Tensor:
        torch.manual_seed(0)
        with torch.no_grad():
            return net.train(mode)(images)[0]["groups"]

    assert not torch.allclose(groups(model, False), groups(model, True))
    batch_stats = module.use_batch_statistics(model)
    assert batch_stats.config.norm == "batch_stats"
    assert torch.allclose(groups(batch_stats, False), groups(batch_stats, True))
    assert torch.allclose(groups(batch_stats, True), groups(model, True))  # the same weights
    module.main([str(tmp_path / "run" / "last.pt"), "--images", "16", "--batch-size", "8", "--batches", "8", "16",
                 "--calibrate", "16"])
    out = capsys.readouterr().out
    assert "| batch of 16 |" in out and "| per iteration (16 noised training images) |" in out and "(16 clean training images)" in out
    assert "| pooled (16 noised training images) |" in out


def test_longer_inference_scores_every_iteration_of_a_trained_model(tmp_path, capsys):
    """experiments/longer_inference.py: the AMI at iterations 1..N of a checkpoint; its first three are what the
    run's own test (three iterations) recorded; a checkpoint of a task without iterations is refused."""
    from rladder_stream.training.train import TrainConfig, train

    module = load_experiment("longer_inference")
    test = _tiny_shapes_run(tmp_path / "run")
    values = module.per_iteration_ami(tmp_path / "run" / "last.pt", 5, 16)
    assert len(values) == 6  # five iterations and the shuffled level
    assert values[:3] == pytest.approx([test["ami_1"], test["ami_2"], test["ami_3"]], abs=1e-6)
    module.main([str(tmp_path / "run" / "last.pt"), "--iterations", "4", "--images", "16"])
    assert "| AMI it. 4 | shuffled |" in capsys.readouterr().out
    omm = TrainConfig(model="omm-hrnn", size="tiny", epochs=1, train_sequences=8, batch_size=8, valid_sequences=8,
                      test_sequences=8, eval_batch_size=8, warmup_steps=1, out=str(tmp_path / "omm"))
    train(omm, log=lambda s: None)
    with pytest.raises(SystemExit, match="does not show its images"):
        module.per_iteration_ami(tmp_path / "omm" / "last.pt", 5, 8)
    streamed = module.streamed(tmp_path / "run" / "last.pt", 5, 16)  # --stream: each image fed 5 ticks by hand
    assert streamed["AMI"][:3] == pytest.approx(values[:3], abs=1e-6) and len(streamed["largest |z|"]) == 5
    assert all(0 < z < 1 for z in streamed["largest |z|"])  # binary groups: a sigmoid
    module.main([str(tmp_path / "run" / "last.pt"), "--stream", "--iterations", "4", "--images", "16"])
    assert "| largest |z| |" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # --data takes data settings only
        module.main([str(tmp_path / "run" / "last.pt"), "--stream", "--data", "lr=0.1"])


def test_true_masks_start_each_group_on_its_true_pixels(tmp_path):
    """masks_from_groups: group k's mask is 0.95 on the pixels of true group k, the rest shared, and a pixel
    not scored (-1) is shared evenly; a run's comparison gives the cost and the AMI per iteration of both starts."""
    import torch

    from rladder_stream.model.tagger import masks_from_groups

    module = load_experiment("true_masks")
    masks = masks_from_groups(torch.tensor([[[0, 1], [2, -1]]]), 4)
    assert masks.shape == (1, 4, 2, 2)
    torch.testing.assert_close(masks.sum(dim=1), torch.ones(1, 2, 2))
    assert masks[0, 0, 0, 0] == masks[0, 1, 0, 1] == masks[0, 2, 1, 0] == pytest.approx(0.95)
    assert masks[0, 3, 0, 0] == pytest.approx(0.05 / 3) and masks[0, 0, 1, 1] == masks[0, 3, 1, 1] == 0.25
    _tiny_shapes_run(tmp_path / "run")
    rows = module.compare(tmp_path / "run" / "last.pt", 16)
    assert list(rows) == ["cost, random start", "AMI, random start", "cost, true start", "AMI, true start"]
    assert all(len(v) == 3 for v in rows.values())
    assert rows["cost, random start"] != rows["cost, true start"]
    with pytest.raises(SystemExit):  # --data takes data settings only: a model setting is refused
        module.main([str(tmp_path / "run" / "last.pt"), "--data", "groups=3"])
    with pytest.raises(SystemExit):  # a training setting that is not about the data too
        module.main([str(tmp_path / "run" / "last.pt"), "--data", "lr=0.1"])
    with pytest.raises(ValueError, match="labelled"):  # the data settings reach the task (Shapes has no class task)
        module.compare(tmp_path / "run" / "last.pt", 16, {"labelled": 10})


def test_true_masks_gives_each_starts_class_error_for_a_model_with_a_class_path(tmp_path):
    """experiments/true_masks.py on a textured-MNIST RTagger: a class-error row per start and iteration, the random
    start's error and cross-entropy counted by hand from the model's own class beliefs on the same images and noise."""
    import torch

    from rladder_stream.streaming.checkpoint import load_model
    from rladder_stream.training.settings import DataSettings
    from rladder_stream.training.tasks import TASKS, task_for
    from rladder_stream.training.train import TrainConfig, train

    module = load_experiment("true_masks")
    run = TrainConfig(model="tmnist-rtagger-sparse", size="tiny", epochs=1, train_sequences=16, batch_size=8,
                      valid_sequences=8, test_sequences=16, eval_batch_size=16, warmup_steps=1, out=str(tmp_path))
    train(run, log=lambda s: None)
    rows = module.compare(tmp_path / "last.pt", 16)
    assert list(rows) == [f"{row}, {start} start" for start in ("random", "true")
                          for row in ("cost", "AMI", "class error %", "class cost")]
    model = load_model(tmp_path / "last.pt").eval()
    task = TASKS[task_for(model.config)](model.config, DataSettings(test_sequences=16))
    batch = next(iter(task.eval_batches("test", 16, 16)))
    with torch.no_grad():
        outputs, _ = model(batch["inputs"], model.init_state(16, generator=torch.Generator().manual_seed(0)))
    logits, labels = outputs["class_logits"].float(), batch["labels"].unsqueeze(1)
    wrong = (logits.argmax(-1) != labels).float().mean(0) * 100
    assert rows["class error %, random start"] == pytest.approx(wrong.tolist())
    nll = -logits.log_softmax(-1).gather(-1, labels.unsqueeze(-1).expand(-1, logits.shape[1], 1)).mean((0, 2))
    assert rows["class cost, random start"] == pytest.approx(nll.tolist(), rel=1e-5)
    assert all(0 <= e <= 100 for e in rows["class error %, true start"])


def test_each_data_set_defaults_to_its_environments_iterations():
    from rladder_stream.envs import shapes, textured_mnist

    assert (SHAPES.iterations, BRODATZ.iterations) == (shapes.N_ITERATIONS, textured_mnist.N_ITERATIONS)


def test_warm_start_doc_checks_the_classification_claim_on_prediction_error_alone():
    """experiments/warm_start.py: the arm without the class cost gives its prediction error only (its class head is the
    base's, untrained since), and the paper's claim that the class task lowers the prediction error is judged on the
    forecast MSE by the docs' rule (here the no-class arm forecasts better, so the claim does not hold)."""
    warm_start = load_experiment("warm_start")

    def run(arm: str, seed: int, error: float, mse: float) -> dict:
        return {"arm": arm, "seed": seed, "steps": 2000, "train_time_s": 60.0, "valid_history": [{"step": 500, "class_error": error}],
                "test": {"class_error": error, "prediction_mse": mse, "prediction_nll": 25.0},
                "train_config": {"batch_size": 32, "lr": 0.002, "lr_schedule": "cosine", "warmup_steps": 100}}

    results = [run("rladder", 1, 5.0, 0.0032), run("rladder", 2, 5.2, 0.0033),
               run("rladder-no-classification", 1, 88.0, 0.0027), run("rladder-no-classification", 2, 91.0, 0.0028)]
    text = warm_start.document({}, results, None)
    no_class_row = next(line for line in text.splitlines() if line.startswith("| `rladder-no-classification` | RLadder"))
    assert no_class_row.split(" | ")[3] == "—" and "0.00275 ± 0.00007" in no_class_row
    assert "| `rladder-no-classification` | 1 | — |" in text and "88.00" not in text
    claim = next(line for line in text.splitlines() if "classification task lowers the prediction error" in line)
    assert claim.startswith("- **does not hold**") and "0.00325 ± 0.00007" in claim
    assert "`rladder-no-classification` errs less than the HRNN" not in text  # no class-error claim for it
    curves = text[text.index("## Learning curves"):text.index("## Per seed")]
    assert "| `rladder` |" in curves and "rladder-no-classification" not in curves  # nor a curve of class error


def test_warm_start_from_scratch_trains_every_arm_without_a_base_and_compares_the_starts(tmp_path):
    """experiments/warm_start.py --base-steps 0: no base run, no init_from, and the arms whose feedback enters the
    input transform (they cannot start from an HRNN) are allowed there only; the doc compares each RLadder variant with
    the default RLadder by the docs' rule."""
    warm_start = load_experiment("warm_start")
    arms = ["hrnn", "rladder", "rladder-closed-input"]
    plan = warm_start.Plan(str(tmp_path), "tiny", 2, 0, 200, 100, arms, {"batch_size": 32})
    runs = plan.continuations()
    assert plan.bases == {} and [arm for arm, _ in runs] == arms * 2
    assert all(cfg.init_from is None for _, cfg in runs)
    assert runs[2][1].model_overrides == {"decoder_init": "closed", "decoder_to_encoder_entry": "input"}
    with pytest.raises(ValueError, match="from scratch"):
        warm_start.Plan(str(tmp_path), "tiny", 2, 100, 200, 100, arms, {"batch_size": 32})

    def run(arm: str, seed: int, error: float, nll: float) -> dict:
        return {"arm": arm, "seed": seed, "steps": 200, "train_time_s": 60.0, "valid_history": [{"step": 100, "class_error": error}],
                "test": {"class_error": error, "prediction_nll": nll},
                "train_config": {"batch_size": 32, "lr": 0.002, "lr_schedule": "constant", "warmup_steps": 100}}

    results = [run("rladder", 1, 10.0, 25.0), run("rladder", 2, 10.2, 25.1),
               run("rladder-closed-input", 1, 8.0, 26.0), run("rladder-closed-input", 2, 8.1, 26.2)]
    text = warm_start.document({}, results, None, from_scratch=True)
    assert text.startswith("# Table 1's arms from scratch") and "continued" not in text
    claims = text[text.index("## Against the default RLadder"):text.index("## Learning curves")]
    assert "- **holds**: `rladder-closed-input` errs less than `rladder`" in claims
    assert "- **does not hold**: `rladder-closed-input` forecasts better (lower NLL) than `rladder`" in claims


def test_grouping_variants_gives_each_data_variant_its_own_section(tmp_path):
    """experiments/grouping_variants.py: runs of one config on different plates are different data, so each variant
    gets its own section and table (Brodatz first), and no row mixes their seeds; the records go beside the doc."""
    grouping_variants = load_experiment("grouping_variants")
    records = json.loads((Path(__file__).resolve().parents[1] / "docs" / "results" / "brodatz-cpu-bf16.json").read_text())
    folders = []
    settings = ({}, {}, {}, {"input_noise": 0.2, "class_weight": 0.0})  # the last: the first run's seed, other settings
    for i, (record, plates, overrides) in enumerate(zip([*records, records[0]], ("flat", "brodatz", "flat", "flat"), settings)):
        record = {**record, "train_config": {**record["train_config"], "textures": plates, "model_overrides": overrides}}
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps(record))
        folders.append(str(folder))
    doc = tmp_path / "variants.md"
    assert grouping_variants.main([*folders, str(tmp_path / "unfinished"), "--doc", str(doc)]) == 0
    text = doc.read_text()
    brodatz, flat = text.index("## Textured MNIST, brodatz, texture scale 1"), text.index("## Textured MNIST, flat, texture scale 1")
    assert brodatz < flat and text.count("\n## Textured MNIST,") == 3
    assert "\n## Textured MNIST, flat, texture scale 1; model settings class_weight=0.0 input_noise=0.2\n" in text
    flat = text.index("## Textured MNIST, flat, texture scale 1\n")
    assert "| `tmnist-tagger-dense` | 1 |" in text[brodatz:flat] and "| `tmnist-tagger-dense` | 2 |" in text[flat:]
    assert "\n# Textured MNIST by data variant" in "\n" + text and "\n# Textured MNIST, " not in text
    assert len(json.loads(doc.with_suffix(".json").read_text())) == 4
    assert "- `unfinished`: stopped before its test (no results.json); no validation logged." in text  # reported, not dropped
    assert "`textures=flat`" in text[flat:] and "Brodatz texture" not in text[flat:]  # each section says its own plates


def test_grouping_variants_puts_shapes_runs_with_other_inputs_in_their_own_section(tmp_path):
    """A Shapes config trained with Gaussian inputs is another model than the binary one of the same seed: its own
    section, named by the settings it changed, after the plain Shapes section."""
    grouping_variants = load_experiment("grouping_variants")
    record = json.loads((Path(__file__).resolve().parents[1] / "docs" / "results" / "shapes-cpu-bf16.json").read_text())[0]
    gaussian = {"tagger_input": "gaussian", "input_noise": 0.2}
    for name, overrides in (("binary", {}), ("gaussian", gaussian)):
        (tmp_path / name).mkdir()
        run = {**record, "train_config": {**record["train_config"], "model_overrides": overrides}}
        (tmp_path / name / "results.json").write_text(json.dumps(run))
    doc = tmp_path / "shapes.md"
    assert grouping_variants.main([str(tmp_path / "binary"), str(tmp_path / "gaussian"), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("# Shapes by data variant and model settings") and "Textured" not in text
    plain, other = text.index("\n## Shapes\n"), text.index("\n## Shapes; model settings input_noise=0.2 tagger_input=gaussian\n")
    assert plain < other and text.count(f"| `{record['model']}` | {record['seed']} |") == 2  # one row in each section


def test_grouping_variants_gives_warm_started_runs_their_own_section_whatever_the_source_seed():
    """A run started from another run's checkpoint is another recipe than the same settings from scratch (its own
    section), and runs started from different seeds of one source run share theirs."""
    grouping_variants = load_experiment("grouping_variants")
    base = {"model": "tmnist-rtagger-sparse", "train_config": {"textures": "brodatz", "model_overrides": {"input_noise": 0.2}}}
    warm = [{**base, "train_config": {**base["train_config"], "init_from": f"/runs/freq20/sparse-freq20-seed{seed}/last.pt"}}
            for seed in (1, 12)]
    assert grouping_variants.recipe(base) == "input_noise=0.2"
    assert {grouping_variants.recipe(run) for run in warm} == {"input_noise=0.2 started from sparse-freq20"}
    taught = {"train_config": {"model_overrides": {"prediction_weight": 0.0002}, "true_start_steps": 3000}}
    assert grouping_variants.recipe(taught) == "prediction_weight=0.0002 true starts for 3000 steps"
    assert grouping_variants.recipe({"train_config": {"true_start_steps": 0}}) == ""
    assert grouping_variants.variant(warm[0]) != grouping_variants.variant(base)


def test_grouping_variants_names_a_stopped_runs_data_and_settings_from_its_checkpoint(tmp_path):
    from rladder_stream.model.registry import build_model, get_config
    from rladder_stream.streaming.checkpoint import save_checkpoint

    grouping_variants = load_experiment("grouping_variants")
    config = get_config("tmnist-tagger-dense", size="tiny")
    (tmp_path / "stopped").mkdir()
    train_config = {"model": "tmnist-tagger-dense", "textures": "sinusoid", "model_overrides": {"input_noise": 0.2}}
    save_checkpoint(tmp_path / "stopped" / "last.pt", config, build_model(config).state_dict(), {"train_config": train_config})
    (tmp_path / "stopped" / "log.csv").write_text("kind,step,epoch,train_time_s,lr,metric,value\n"
                                                  "valid,1000,1.0,60.0,,ami_1,0.1\nvalid,1000,1.0,60.0,,ami_2,0.25\n"
                                                  "valid,1000,1.0,60.0,,largest_group_2,0.7\nvalid,1000,1.0,60.0,,ami,0.175\n"
                                                  "valid,1000,1.0,60.0,,ami_shuffled,0.05\n")
    line = grouping_variants.unfinished_lines([tmp_path / "stopped"])[0]
    assert line.startswith("- `stopped` (`tmnist-tagger-dense`, Textured MNIST, sinusoid, texture scale 1; model settings "
                           "input_noise=0.2): stopped before its test")
    assert "last validation at step 1000: AMI at iteration 2 0.250 against 0.050 shuffled, the largest group 0.70 of" in line


def test_a_run_of_a_config_without_a_row_gets_a_row_named_by_its_config():
    """A grouping document never drops a run: a config the data set does not list gets a row of its own, labelled
    with its name, after the listed ones."""
    records = json.loads((Path(__file__).resolve().parents[1] / "docs" / "results" / "brodatz-cpu-bf16.json").read_text())
    other = {**records[1], "model": "tmnist-unlisted"}
    text = grouping_markdown(BRODATZ, [records[0], other])
    assert "| tmnist-unlisted | `tmnist-unlisted` | 1 |" in text and "| `tmnist-unlisted` | 1 |" in text
    assert text.index("`tmnist-tagger-dense` | 1 |") < text.index("| tmnist-unlisted |")


def test_a_model_without_groups_gets_its_class_error_and_no_grouping_claim():
    """The ConvNet row of the Brodatz document: its class error beside the Taggers', no claim that it groups (it has
    no groups to judge) and no empty column among the validation AMI curves."""
    records = json.loads((Path(__file__).resolve().parents[1] / "docs" / "results" / "brodatz-cpu-bf16.json").read_text())
    convnet = {**records[0], "model": "tmnist-convnet", "test": {"class_error": 20.0},
               "valid_history": [{"step": 1000, "class_error": 30.0}]}
    text = grouping_markdown(BRODATZ, [records[0], convnet])
    assert "| `tmnist-convnet` | 0 | — | — | — | — | 20.00 |" in text
    assert "`tmnist-convnet` has no groups" in text and "`tmnist-convnet` groups above" not in text
    assert "`tmnist-tagger-dense` groups above its shuffled chance level" in text
    curves = text[text.index("## Validation AMI"):]
    assert "`tmnist-convnet` seed" not in curves and "`tmnist-tagger-dense` seed 0" in curves


def test_grouping_variants_re_derives_the_committed_texture_variants_from_its_records(tmp_path):
    """``--from-records``: docs/results/texture_variants.md from the records beside it, every line but the time and the
    command; the stopped runs' lines (their folders are gone) are kept from the earlier document; a run folder given
    anew replaces its record rather than adding a second row."""
    grouping_variants = load_experiment("grouping_variants")
    committed = Path(__file__).resolve().parents[1] / "docs" / "results" / "texture_variants.md"
    records = json.loads(committed.with_suffix(".json").read_text())
    doc = tmp_path / "variants.md"
    doc.write_text(committed.read_text())
    rerun = tmp_path / "rerun"
    rerun.mkdir()
    (rerun / "results.json").write_text(json.dumps(records[-1]))
    assert grouping_variants.main([str(rerun), "--from-records", str(committed.with_suffix(".json")), "--doc", str(doc)]) == 0
    made = lambda text: [line for line in text.splitlines() if "Generated" not in line and "grouping_variants.py" not in line]  # noqa: E731
    assert made(doc.read_text()) == made(committed.read_text())
    assert json.loads(doc.with_suffix(".json").read_text()) == records
