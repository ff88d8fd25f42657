"""The one way to load a model file: ``load_predictor(path, runtime="auto")`` reads what the file is."""

from __future__ import annotations

import pytest

from rladder_stream import CheckpointError, Predictor, load_predictor
from rladder_stream.apps.loading import describe_model_file, predictor_for, pretrained_path
from rladder_stream.errors import UsageError

SHIPPED = pretrained_path()


@pytest.mark.parametrize("runtime", ["auto", None, "torch"])
def test_a_checkpoint_streams_on_pytorch_unless_asked_otherwise(runtime):
    predictor = load_predictor(SHIPPED, runtime, n_streams=2)
    assert isinstance(predictor, Predictor) and predictor.n_streams == 2


def test_commands_load_the_shipped_model_by_default_and_name_the_runtime():
    predictor, source = predictor_for(None)
    assert isinstance(predictor, Predictor) and source == f"{SHIPPED} (torch runtime)"
    assert describe_model_file(SHIPPED)["parameters"] == predictor.model.num_parameters()


def test_what_cannot_be_loaded_is_a_user_error(tmp_path):
    with pytest.raises(UsageError, match="runtime"):
        load_predictor(SHIPPED, "tensorrt")
    junk = tmp_path / "model.pt"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(CheckpointError, match="model.pt"):
        load_predictor(junk)
    with pytest.raises(UsageError, match="--model"):
        predictor_for(None, shipped="no-such-model.pt")
