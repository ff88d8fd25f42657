"""The model (docs/design.md#the-model-and-its-state): :mod:`.config` (configurations as plain data),
:mod:`.registry` (named configurations and the one factory, ``build_model``), :mod:`.cells`, :mod:`.ladder`
(RLadder, the pure one-tick step) and :mod:`.tagger` (RTagger). A room of the layout (docs/design.md#the-layout):
it imports only the base modules beside this folder. Nothing is loaded here, so ``import
rladder_stream.model.config`` loads that module alone."""
