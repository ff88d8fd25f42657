"""Streaming a model: :mod:`.outputs` (StepOutput and the StreamingPredictor protocol), :mod:`.validation`,
:mod:`.predictor` (the stateful Predictor), :mod:`.fast_step`, :mod:`.stateless` (SB3-style), :mod:`.episode`
(the one streaming loop), :mod:`.checkpoint` (safe save and load, docs/design.md#checkpoints) and
:mod:`.baselines` (reference predictors). A room of the layout (docs/design.md#the-layout): it imports the model
and the base modules."""
