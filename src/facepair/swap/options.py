"""What `facepair swap` takes: SwapOptions (every flag, with its default) and the choices of its
named options. A plain dataclass, so the command line reads the defaults without loading torch."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import FacepairError, out_of_bounds
from ..faces.options import DEFAULT_DETECT_SIZE, DEFAULT_THRESHOLD

MASKS = ("hull", "box")
COLORS = ("none", "mean", "lab", "hist", "skin")
BLENDS = ("feather", "seamless")
# what in front of the face is kept from the source (compose.occlusion): none, or auto (where the
# source's own rebuild disagrees with it; benchmarks/occlusion.py, docs/results.md)
OCCLUSIONS = ("none", "auto")
ENGINES = ("torch", "onnx")          # what runs the model: PyTorch, or ONNX Runtime (model/export.py)
# torch: on the 2-core AMD with bf16, 39.5 frames/s end to end against 37.5 for onnx, side by
# side in one run of benchmarks/swap_speed.py (docs/results.md, 0.2.0)
DEFAULT_ENGINE = "torch"
MAX_MASK_PX = 64            # --erode, --feather: half a 128 px crop wipes or blurs the whole face
MAX_SECONDS = 10**7         # --duration: 115 days (larger overflowed the frame count)
MAX_CRF = 51                # x264's; past the default, swap reads its mark back (pipeline.py)


@dataclass
class SwapOptions:
    direction: str = "a2b"
    detector: str = "hog"
    detect_size: int = DEFAULT_DETECT_SIZE
    detect_every: int = 5             # video: full detection every N frames, tracking between
    mask: str = "hull"
    erode: float = 1.0                # crop pixels
    feather: float = 4.0              # crop pixels
    color: str = "lab"                # skin: an option (docs/results.md, "--color skin judged again",
                                      # and its 8 s rows)
    blend: str = "feather"
    occlusion: str = "auto"
    identity: list | None = None
    maps: list | None = None          # [(photo or face set, model folder)]: each person their model
    threshold: float = DEFAULT_THRESHOLD
    smooth: bool = True
    device: str = "auto"
    engine: str | None = None         # ENGINES; None: DEFAULT_ENGINE where it applies, else torch
    batch: int = 8                    # video frames per model batch
    crf: int = 18
    duration: float | None = None     # video: seconds from the start to swap (None: all)
    progress: bool = True

    def check(self) -> None:
        """The command line's bounds, for the Python API too (detect_every=0 was a
        ZeroDivisionError, duration=-1 "no frame could be decoded" from a good file, 1.5 a
        detector on every third frame): one FacepairError naming the flag."""
        for flag, value, choices in (("--mask", self.mask, MASKS), ("--color", self.color, COLORS),
                                     ("--blend", self.blend, BLENDS), ("--occlusion", self.occlusion, OCCLUSIONS)):
            if value not in choices:
                raise FacepairError(f"bad {flag} '{value}' (choose from {', '.join(choices)})")
        for flag, value, kind, bounds in (
                ("--detect-every", self.detect_every, int, dict(least=1)),
                ("--detect-size", self.detect_size, int, dict(least=0)),
                ("--erode", self.erode, float, dict(least=0, most=MAX_MASK_PX)),
                ("--feather", self.feather, float, dict(least=0, most=MAX_MASK_PX)),
                ("--threshold", self.threshold, float, dict(above=0)),
                ("--crf", self.crf, int, dict(least=0, most=MAX_CRF)),
                ("batch", self.batch, int, dict(least=1)),
                *((("--duration", self.duration, float, dict(above=0, most=MAX_SECONDS)),)
                  if self.duration is not None else ())):
            why = out_of_bounds(value, kind, **bounds)
            if why:
                raise FacepairError(f"{flag}: {why}")
