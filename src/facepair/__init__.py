"""facepair: face swapping with two autoencoders that share one encoder.

Python API mirrors the command line: `facepair.extract(...)`, `facepair.train(...)`.
"""
__version__ = "0.1.0"


def extract(*args, **kwargs):
    """See facepair.faces.extract.extract."""
    from .faces.extract import extract as _extract
    return _extract(*args, **kwargs)


def train(*args, **kwargs):
    """See facepair.training.loop.train (takes a TrainOptions, or its fields as keywords)."""
    from .training.loop import TrainOptions, train as _train
    opts = args[0] if args and isinstance(args[0], TrainOptions) else TrainOptions(*args, **kwargs)
    return _train(opts)
