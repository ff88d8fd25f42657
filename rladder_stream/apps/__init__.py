"""What a user runs: the ``rladder-stream`` command line, the benchmark, MIDI streaming, the figures,
:func:`~rladder_stream.apps.loading.load_predictor` (the one way to load a model file) and the command line's
boundary helpers (:mod:`.boundary`). The only room that imports :mod:`rladder_stream.export`."""
