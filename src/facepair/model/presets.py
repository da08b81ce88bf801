"""Named presets: each is data (a model config and a training config), never a branch in code."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

from ..errors import FacepairError
from ..faces.landmarks import MOUTH
from ..faces.options import MAX_SIZE, MIN_SIZE


DIRECTIONS = {"a2b": ("a", "b"), "b2a": ("b", "a")}   # swap direction -> (source side, target side)
REBUILDS = {"aa": ("a", "a"), "bb": ("b", "b")}       # a side through its own decoder (evaluate)


@dataclass(frozen=True)
class ModelConfig:
    size: int = field(default=64, metadata={"range": (MIN_SIZE, MAX_SIZE)})   # face crop side, px
    enc_filters: tuple[int, ...] = (64, 128, 256, 512)
    code: int = 512                                  # the shared code's width
    dec_dense1: int = 512
    dec_dense2: int = 1024
    dec_filters: tuple[int, ...] = (512, 256, 128, 3)
    slope: float = 0.2                               # LeakyReLU negative slope
    upsample: str = "transpose"    # the decoder's x2 steps: transpose (ConvTranspose2d k2 s2, as
                                   # published) or nearest (resize-convolution: no learned
                                   # sub-pixel phases, so no grid of 2 and 4 px; autoencoder.py)
    joint_batch: bool = False      # A and B through the encoder as one batch (shared BatchNorm
                                   # statistics, one larger conv call); seed: two separate passes
    cue_points: tuple[int, ...] = ()   # landmarks (68-point indices) the decoders take as input;
                                       # the encoder sees their region greyed out (autoencoder.py)
    cue_lids: bool = False         # with cue_points: each eye's lid gap over the inter-ocular
                                   # distance in the cue too (the eyes stay visible to the encoder)
    arch: str = "conv"             # conv: autoencoder.py's layers; seq2seq: seq2seq.py's transformer
    patch: int = 8                 # seq2seq: patch side in px (64 tokens for a 64 px face)
    dim: int = 192                 # seq2seq: token width
    depth: int = 4                 # seq2seq: blocks in the encoder and in each decoder
    heads: int = 4                 # seq2seq: attention heads
    latents: int = 16              # seq2seq: code tokens (code / latents numbers each)
    context: int = 0               # seq2seq: previous frames whose code tokens the decoders also
                                   # attend to (0: each frame alone); trained on clips of
                                   # consecutive faces, used by swap with a rolling window

    @property
    def cue_width(self) -> int:
        """Numbers in the decoders' landmark cue: x, y of each cue point, and a gap per eye."""
        return 2 * len(self.cue_points) + 2 * (self.cue_lids and bool(self.cue_points))


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 5e-5
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 32
    loss: str = "l1"                                 # mean absolute error
    ssim_weight: float = 0.0                         # + w * (1 - SSIM)
    region_weight: float = 1.0                       # L1 weight on eyes and mouth (aligned crops)
    edge_weight: float = 0.0                         # + w * gradient difference loss (losses.py)
    perceptual_weight: float = 0.0 # + w * the distance between the features of dlib's face
                                   # network (its first levels) of rebuild and target (losses.py)
    outside_weight: float = 1.0    # masked training: the pixel losses' weight outside each face's
                                   # grown landmark hull (losses.face_weights; 1: off)
    warmup_steps: int = 0                            # linear learning-rate warm-up
    # the seed's future work: a discriminator per side (0 = off), switched on at gan_start
    gan_weight: float = 0.0                          # LSGAN adversarial term
    fm_weight: float = 0.0                           # feature matching on discriminator features
    gan_start: int = 0
    d_lr: float = 1e-4
    # augmentation (all off in the published recipe)
    flip: bool = False
    affine: bool = False                             # small random rotation / scale / shift
    color: bool = False                              # brightness / contrast / saturation jitter
    warp: bool = False                               # deepfake random warp: warped in, clean target
    eye_repeat: int = 1            # faces whose eyelid gap is rare (blinks, wide eyes) come up to
                                   # this many times per epoch (1: each face once; data.py)
    val_fraction: float = 0.05                       # held-out share of each side (max val_max)
    val_max: int = 64
    val_blocks: int = 4                              # ... as this many blocks spread over the footage
    val_gap: int = 8                                 # faces either side of a block kept out of training


@dataclass(frozen=True)
class Preset:
    name: str
    description: str                 # what it changes, for docs/presets.md's readers
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    use: str = ""                    # when to pick it, in a user's words (the web app shows it)


PRESETS: dict[str, Preset] = {
    p.name: p for p in [
        Preset("seed", "the published method, layer for layer: 64 px, Adam 5e-5 (0.5, 0.999), "
                       "L1, batch 32, no augmentation",
               use="For comparison: the published method exactly as written. 64 px faces (extract "
                   "with --size 64); blurry, and the swapped mouth follows the source poorly."),
        Preset("seed-joint", "seed, with A and B through the shared encoder as one batch (the "
                             "other faithful reading of \"trained simultaneously\")",
               model=ModelConfig(joint_batch=True),
               use="For comparison: the published method with A and B in one batch. 64 px faces "
                   "(extract with --size 64)."),
        Preset("quick", "seed layout; A and B share encoder batches; batch 16, lr 3e-4 after a "
                        "100-step warm-up; L1 + 0.5 (1 - SSIM) with 3x weight on eyes and mouth",
               model=ModelConfig(joint_batch=True),
               train=TrainConfig(lr=3e-4, batch_size=16, warmup_steps=100, ssim_weight=0.5,
                                 region_weight=3.0),
               use="For a quick check of the pipeline: 64 px faces (extract with --size 64), no "
                   "landmark cue, so the swapped mouth follows the source poorly."),
        Preset("mouth", "quick, with a landmark cue: the encoder sees the mouth greyed out, the "
                        "decoders take its 20 landmarks as offsets from the side's mean",
               model=ModelConfig(joint_batch=True, cue_points=MOUTH),
               train=TrainConfig(lr=3e-4, batch_size=16, warmup_steps=100, ssim_weight=0.5,
                                 region_weight=3.0),
               use="Faster and coarser than hd: 64 px faces (extract with --size 64) and 1.5x hd's "
                   "steps per minute; for short runs or 64 px face sets."),
        Preset("gan", "quick, plus the published future work: a PatchGAN discriminator per side "
                      "from step 300, LSGAN weight 0.05 and feature matching weight 0.5",
               model=ModelConfig(joint_batch=True),
               train=TrainConfig(lr=3e-4, batch_size=16, warmup_steps=100, ssim_weight=0.5,
                                 region_weight=3.0, gan_weight=0.05, fm_weight=0.5, gan_start=300),
               use="Research: quick plus the published future work, a discriminator. 64 px faces, "
                   "no landmark cue."),
        Preset("seq2seq", "the title's transformer: patch tokens, a shared encoder read out by 16 "
                          "latent queries (512 numbers), per-person decoders of patch queries "
                          "attending to them; mouth cue and losses as in mouth",
               model=ModelConfig(joint_batch=True, cue_points=MOUTH, arch="seq2seq"),
               train=TrainConfig(lr=3e-4, batch_size=16, warmup_steps=200, ssim_weight=0.5,
                                 region_weight=3.0),
               use="Research: the title's transformer. 64 px faces; looks more like person B but "
                   "follows the expression less than hd."),
        Preset("seq2seq-temporal", "seq2seq whose decoders also attend to the code tokens of the "
                                   "previous 4 frames: trained on clips of 5 consecutive faces, "
                                   "swapped with a rolling window over the video",
               model=ModelConfig(joint_batch=True, cue_points=MOUTH, arch="seq2seq", context=4),
               train=TrainConfig(lr=3e-4, batch_size=16, warmup_steps=200, ssim_weight=0.5,
                                 region_weight=3.0),
               use="Research: the transformer, also reading the 4 frames before. 64 px faces."),
        Preset("hd", "mouth at 128 px: a fifth stride-2 encoder layer (filters 32 to 512, so "
                     "the code stays 4 x 4 x 512 before its dense layer) and a fifth decoder "
                     "stage (64 filters at 64 px, then 3 at 128 px); the decoders upsample by "
                     "resize-convolutions (nearest x2, then the 3x3 conv: no grid); each eye's "
                     "lid gap in the cue too (the eyes stay visible); needs 128 px face sets "
                     "(extract's default)",
               model=ModelConfig(size=128, enc_filters=(32, 64, 128, 256, 512),
                                 dec_filters=(512, 256, 128, 64, 3), joint_batch=True,
                                 cue_points=MOUTH, cue_lids=True, upsample="nearest"),
               train=TrainConfig(lr=3e-4, batch_size=16, warmup_steps=100, ssim_weight=0.5,
                                 region_weight=3.0),
               use="The default: 128 px faces (extract's default) whose mouth and eyelids follow "
                   "the source. Train 20 minutes or more; on a CPU without native bf16, about five "
                   "times as long for the same steps."),
        Preset("quick-l1", "as quick, plain L1 (measures what SSIM and the region weights add)",
               model=ModelConfig(joint_batch=True),
               train=TrainConfig(lr=3e-4, batch_size=16, warmup_steps=100),
               use="Research: quick with a plain loss, to measure what the other losses add."),
    ]
}
# hd with masked training (DeepFaceLab's default): measured against hd on both pairs
# (docs/results.md, "Masked training")
PRESETS["hd-masked"] = replace(
    PRESETS["hd"], name="hd-masked",
    description="hd, with masked training: the pixel losses weighted 0.1 outside each face's "
                "landmark hull grown by 1/16 of the crop (the decoders spend themselves on the "
                "face rather than the background)",
    train=replace(PRESETS["hd"].train, outside_weight=0.1),
    use="Research: hd trained on the face alone; better than hd on one sample pair, worse on the other.")
# hd with a structure-led loss (DeepFaceLab and faceswap weight SSIM first): measured against hd
# on both pairs (docs/results.md, "A nonlinear stage at 128 px, an SSIM-led loss and two fixes
# for the Obama eyelids"), a second Obama seed in "`hd-ssim`'s second seed on the Obama pair"
PRESETS["hd-ssim"] = replace(
    PRESETS["hd"], name="hd-ssim",
    description="hd, with a structure-led loss: L1 + 2 (1 - SSIM) (hd: 0.5), the eyes' and "
                "mouth's 3x L1 weight as in hd",
    train=replace(PRESETS["hd"].train, ssim_weight=2.0),
    use="Research: hd with a structure-led loss; better than hd on one sample pair, worse on the other.")
# hd with a perceptual loss (the seed's named future work, with a network that ships in a wheel):
# measured against hd on both pairs, two seeds each (docs/results.md, "A perceptual loss")
PRESETS["hd-perceptual"] = replace(
    PRESETS["hd"], name="hd-perceptual",
    description="hd, with a perceptual loss: + 0.5 x the distance between the feature maps of "
                "the first two levels of dlib's face network (the identity network of "
                "face-recognition-models, frozen) of each rebuild and its target",
    train=replace(PRESETS["hd"].train, perceptual_weight=0.5),
    use="Research: hd with a perceptual loss; more face detail than hd on both sample pairs, a "
        "less faithful mouth on both.")
DEFAULT_PRESET = "hd"       # ahead of mouth at 20 CPU-minutes on a new recording (docs/results.md; benchmarks/quality.py)


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise FacepairError(f"unknown preset '{name}' (available: {', '.join(PRESETS)})")
    return PRESETS[name]


def config_to_dict(cfg) -> dict:
    return asdict(cfg)


def _fits(value, f) -> bool:
    """Whether a JSON value is of the kind of a config field's default (tuples: of ints), within
    the field's "range" where its metadata names one."""
    default = f.default
    if isinstance(default, tuple):
        return isinstance(value, (list, tuple)) and all(type(x) is int and x >= 0 for x in value)
    if isinstance(default, (bool, str)):
        return type(value) is type(default)
    if isinstance(default, int):                 # sizes, widths, counts, steps
        least, most = f.metadata.get("range", (0, math.inf))
        return type(value) is int and least <= value <= most
    return type(value) in (int, float) and math.isfinite(value)


def config_from_dict(cls, d: dict):
    """Rebuild a (frozen) config dataclass from JSON, turning lists back into tuples. A field of
    the wrong kind (a hand-edited state.json) is a one-line error naming it; unknown keys are
    left out (a later version's fields)."""
    if not isinstance(d, dict):
        raise FacepairError(f"bad {cls.__name__}: {type(d).__name__}, not an object")
    out = {}
    for f in fields(cls):
        if f.name in d:
            if not _fits(d[f.name], f):
                bounds = " ({} to {})".format(*f.metadata["range"]) if "range" in f.metadata else ""
                raise FacepairError(f"bad {cls.__name__} field '{f.name}': {d[f.name]!r:.60}{bounds}")
            out[f.name] = tuple(d[f.name]) if isinstance(f.default, tuple) else d[f.name]
    return cls(**out)
