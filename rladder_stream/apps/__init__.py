"""What a user runs: the ``rladder-stream`` command line, the benchmark, MIDI streaming, the figures, and
:func:`~rladder_stream.apps.loading.load_predictor`, the one way to load a model file. The only room that imports
:mod:`rladder_stream.export`."""
