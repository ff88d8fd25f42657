"""ONNX export of the one-tick step and an ONNX Runtime predictor (see issue 8; not yet built)."""
