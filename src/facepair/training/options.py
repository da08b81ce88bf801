"""What `facepair train` takes and gives back: TrainOptions (every flag, with its default) and
TrainResult. Plain dataclasses, so the command line reads the defaults without loading torch."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..media.files import as_list


@dataclass
class TrainOptions:
    a: list
    b: list
    model_dir: str
    preset: str | None = None
    steps: int | None = None            # total step count to reach
    minutes: float | None = None        # wall-clock budget of this run
    batch_size: int | None = None
    lr: float | None = None
    save_every: int = 100
    keep: int = 3                       # checkpoints kept
    keep_previews: int = 20             # numbered preview grids kept (latest.png always)
    preview_every: int = 100
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    workers: int = 1
    seed: int | None = None             # a new model: 0; a resume keeps the model's own
    flip: bool | None = None
    affine: bool | None = None
    color: bool | None = None
    warp: bool | None = None
    progress: bool = True
    # landmark-cue models: training faces per side the cue's setting is measured on (0: skip;
    # None: by the training's length, evaluate/calibrate.faces_for)
    calibrate_faces: int | None = None

    def __post_init__(self):
        self.a, self.b = as_list(self.a), as_list(self.b)   # one face set: a path, not a list


@dataclass
class TrainResult:
    model_dir: str
    preset: str
    start_step: int
    step: int
    seconds: float
    images_per_s: float
    losses: dict = field(default_factory=dict)
    cue: dict | None = None             # measured by evaluate/calibrate.py (landmark-cue models)
    cue_seconds: float | None = None    # how long that took

    def __str__(self):
        l = "   ".join(f"{k} {v:.4f}" for k, v in self.losses.items() if v is not None)
        cue = "" if self.cue is None else "\nlandmark cue in swaps (centre moved toward the " \
            "target's mean face, gain): " + ", ".join(
                f"{k} {v['shift']:g}, {v['gain']:g}x"
                + (f", lids {v['lid_gain']:g}x" if "lid_gain" in v else "") for k, v in self.cue.items()) \
            + ("" if self.cue_seconds is None else f" (measured in {self.cue_seconds:.0f} s)")
        if self.step == self.start_step and not self.seconds:      # past --steps: nothing trained
            return f"nothing trained: step {self.step}{cue}\nmodel: {self.model_dir}"
        return (f"trained {self.preset}: steps {self.start_step} -> {self.step} in "
                f"{self.seconds:.0f} s ({self.images_per_s:.1f} images/s)   {l}{cue}\n"
                f"model: {self.model_dir}")


