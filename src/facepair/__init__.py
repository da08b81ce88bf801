"""facepair: face swapping with two autoencoders that share one encoder.

The Python API mirrors the command line: `facepair.extract(...)`, `facepair.train(...)`,
`facepair.verify(...)` here, and every stage in facepair.api (`facepair.api.swap(...)`,
`facepair.api.evaluate(...)`; those two names are also the stages' subpackages).
"""
__version__ = "0.2.0"       # the one place the version is set (pyproject.toml reads it)

from .api import extract, train, verify  # noqa: E402,F401  (light: stages load on first use)
