"""Two autoencoders that share one encoder: the whole model on one screen.

Encoder (shared): 4 x [Conv2d 5x5 stride 2 -> BatchNorm -> LeakyReLU], flatten, Dense 512.
Decoder (one per identity): Dense 512 (linear) -> Dense 1024 (ReLU) -> reshape ->
4 x [ConvTranspose2d (x2 upsampling) -> Conv2d 3x3 stride 1], conv filters 512, 256, 128, 3,
LeakyReLU and BatchNorm between, the last conv linear.

Choices where the published description is silent (also listed in docs/presets.md):
- The 1024-d dense output is reshaped to 64 x 4 x 4: four x2 upsamplings then reach 64 x 64, the
  mirror of the encoder's four stride-2 halvings (64 -> 4).
- Each ConvTranspose2d keeps its channel count and uses kernel 2, stride 2: a learned x2 upsampling
  whose kernels do not overlap; the Conv2d after it sets the filters. Non-overlapping kernels still
  draw a grid (each sub-pixel phase has its own kernel): `hd` replaces each ConvTranspose2d by a
  nearest x2 upsampling (ModelConfig.upsample, a resize-convolution; docs/results.md).
- "LeakyReLU, BatchNorm between" is taken literally: Conv2d -> LeakyReLU -> BatchNorm after each of
  the first three decoder convs. LeakyReLU slope 0.2 everywhere (the common DCGAN value).
- Convs are "same"-padded (5x5: padding 2, 3x3: padding 1).
- Images are RGB in [0, 1]; the last conv is linear as specified (no sigmoid), so outputs are
  clamped to [0, 1] only for display and swapping, never inside the loss.

Presets may add a landmark cue (not in the published method, off in `seed`): the encoder sees
the region of some landmarks (the mouth) filled with the mean colour of the rest, and each
decoder takes those landmarks, as offsets from its side's mean face, next to the code. The codes of
A and B lie far apart, so a decoder reads the other side's mouth badly (even inversely) from the
code alone; a landmark offset means the same on both sides. `hd` also hands them each eye's lid
gap (`cue_lids`): what the code keeps of the eye state does not survive a new recording (docs/results.md:
"The lids in the cue"), and a ratio of landmark distances, unlike their places, does.
"""
from __future__ import annotations

import torch
from torch import nn

from ..faces.landmarks import LEFT_EYE, LID_BOTTOM, LID_TOP, RIGHT_EYE
from .presets import ModelConfig
from .seq2seq import TokenDecoder, TokenEncoder
from .upconv import up_conv


def cue_features(marks: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """(N, 68, 2) landmarks in crop pixels -> (N, cfg.cue_width): the cue points / crop size,
    then (cue_lids) each eye's lid gap over the inter-ocular distance, which no shift of the face
    in the crop changes."""
    pts = marks[:, list(cfg.cue_points)].flatten(1) / cfg.size
    if not cfg.cue_lids:
        return pts
    gap = (marks[:, LID_TOP] - marks[:, LID_BOTTOM]).norm(dim=2)           # (N, 4): 2 per eye
    iod = (marks[:, LEFT_EYE].mean(1) - marks[:, RIGHT_EYE].mean(1)).norm(dim=1, keepdim=True)
    return torch.cat([pts, torch.stack([gap[:, :2].mean(1), gap[:, 2:].mean(1)], 1) / iod], 1)


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        layers, c_in = [], 3
        for c_out in cfg.enc_filters:
            layers += [nn.Conv2d(c_in, c_out, 5, stride=2, padding=2),
                       nn.BatchNorm2d(c_out), nn.LeakyReLU(cfg.slope)]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        side = cfg.size // 2 ** len(cfg.enc_filters)
        self.dense = nn.Linear(c_in * side * side, cfg.code)

    def forward(self, x):
        return self.dense(self.convs(x).flatten(1))


class UpBlock(nn.Module):
    """ConvTranspose2d (x2) -> Conv2d 3x3 -> [LeakyReLU -> BatchNorm] (none after the last);
    upsample "nearest": a nearest x2 upsampling instead of the ConvTranspose2d (a resize-
    convolution: no sub-pixel phases of its own, so no grid; the default preset's)."""

    def __init__(self, c_in: int, c_out: int, slope: float, last: bool, upsample: str = "transpose"):
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_in, 2, stride=2) if upsample == "transpose" else None
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.post = None if last else nn.Sequential(nn.LeakyReLU(slope), nn.BatchNorm2d(c_out))

    def forward(self, x):
        x = up_conv(x, self.up, self.conv)          # = self.conv(self.up(x)), faster (upconv.py)
        return x if self.post is None else self.post(x)


class Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.side = cfg.size // 2 ** len(cfg.dec_filters)          # 4 for 64 px
        self.c0 = cfg.dec_dense2 // (self.side * self.side)       # 1024 / 16 = 64 channels
        self.dense = nn.Sequential(nn.Linear(cfg.code + cfg.cue_width, cfg.dec_dense1),  # linear
                                   nn.Linear(cfg.dec_dense1, cfg.dec_dense2), nn.ReLU())
        chans = (self.c0, *cfg.dec_filters)
        self.blocks = nn.Sequential(*[UpBlock(i, o, cfg.slope, k == len(cfg.dec_filters) - 1, cfg.upsample)
                                      for k, (i, o) in enumerate(zip(chans, chans[1:]))])

    def forward(self, code, history=None):           # history: for temporal decoders only
        return self.blocks(self.dense(code).view(-1, self.c0, self.side, self.side))


ARCHS = {"conv": (Encoder, Decoder), "seq2seq": (TokenEncoder, TokenDecoder)}   # ModelConfig.arch


class FacePair(nn.Module):
    """The shared encoder and the decoders of A and B. forward() runs one training step's
    reconstructions: A through decoder A and B through decoder B (so DDP sees every parameter)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        encoder, decoder = ARCHS[cfg.arch]
        self.encoder = encoder(cfg)
        self.decoder_a = decoder(cfg)
        self.decoder_b = decoder(cfg)
        if cfg.cue_points:         # set from the training faces (training/data.cue_stats)
            self.register_buffer("cue_mask", torch.zeros(1, 1, cfg.size, cfg.size))
            self.register_buffer("cue_mean", torch.zeros(2, cfg.cue_width))     # per side
            self.register_buffer("cue_std", torch.ones(cfg.cue_width))          # both sides
            # per target side, for swaps: how far the source's cue centre moves toward the
            # target's mean face (0: offsets from the source's own mean) and the offsets' gain;
            # measured after training (evaluate/calibrate.py), kept in state.json, not weights
            self.register_buffer("cue_shift", torch.zeros(2), persistent=False)
            self.register_buffer("cue_gain", torch.ones(2), persistent=False)
            self.register_buffer("cue_lid_gain", torch.ones(2), persistent=False)   # cue_lids

    def encode(self, x):
        if self.cfg.cue_points:    # hide the cue's region from the code: it comes from landmarks
            m, keep = self.cue_mask, 1 - self.cue_mask              # filled with the rest's mean
            x = x * keep + m * (x * keep).sum((2, 3), keepdim=True) / keep.sum()
        return self.encoder(x)

    def decode(self, code, side: str, cue=None, history=None):
        """Decoder of `side`, fed the code and, where the model has one, the landmark cue (and for
        a temporal model the previous frames' decoder inputs, (N, k, W), most recent first)."""
        return self.decoder(side)(code if cue is None else torch.cat([code, cue], 1), history)

    def inputs(self, faces, to: str, marks=None, source: str | None = None, code=None):
        """What the decoder of `to` takes for faces of `source`: the code, and the cue where the
        model has one, (N, W). A temporal model's rolling window keeps these per frame. `code`:
        the faces' code when already encoded (a swap and its rebuild share one)."""
        source = source or {"a": "b", "b": "a"}[to]
        if self.cfg.cue_points and marks is None:
            raise ValueError("this model's decoders need the faces' landmarks (marks)")
        cue = self.cue(marks, source, to)
        code = self.encode(faces) if code is None else code
        return code if cue is None else torch.cat([code, cue], 1)

    def cue(self, marks, side: str, to: str | None = None):
        """(N, 68, 2) landmarks of faces of `side` -> the cue for the decoder of `to` (default:
        `side`): the cue points' offsets from `side`'s mean, in units shared by both sides (so an
        open mouth is the same offset for A and B; scaling each side to its own spread measured
        worse); in a swap, the centre moved cue_shift of the way to `to`'s mean, the points'
        offsets scaled by cue_gain and the lids' by cue_lid_gain. None without a cue."""
        if not self.cfg.cue_points:
            return None
        marks = torch.as_tensor(marks, dtype=torch.float32, device=self.cue_std.device)
        x = cue_features(marks, self.cfg)
        s, t = "ab".index(side), "ab".index(to or side)
        if s == t:
            return (x - self.cue_mean[s]) / self.cue_std
        centre = self.cue_mean[s] + self.cue_shift[t] * (self.cue_mean[t] - self.cue_mean[s])
        off, n = (x - centre) / self.cue_std, 2 * len(self.cfg.cue_points)
        return torch.cat([self.cue_gain[t] * off[:, :n], self.cue_lid_gain[t] * off[:, n:]], 1)

    def forward(self, a, b, marks_a=None, marks_b=None, prev_a=None, prev_b=None):
        """prev_a, prev_b (temporal models): (N, k) indices in the batch of each face's previous
        frames, most recent first (the batch holds clips of consecutive faces)."""
        if self.cfg.joint_batch:
            za, zb = self.encode(torch.cat([a, b])).split([len(a), len(b)])
        else:
            za, zb = self.encode(a), self.encode(b)
        out = []
        for side, z, marks, prev in (("a", za, marks_a, prev_a), ("b", zb, marks_b, prev_b)):
            cue = self.cue(marks, side)
            x = z if cue is None else torch.cat([z, cue], 1)
            out.append(self.decoder(side)(x, None if prev is None else x[prev]))
        return tuple(out)

    def decoder(self, side: str) -> Decoder:
        return {"a": self.decoder_a, "b": self.decoder_b}[side]

    @torch.no_grad()
    def swap(self, faces, to: str, marks=None, source: str | None = None, history=None):
        """Encode faces (N,3,H,W in [0,1]) of side `source` (default: the side other than `to`)
        and decode with the decoder of side `to` ("a" or "b"). A model with a landmark cue needs the
        faces' landmarks `marks` (N, 68, 2) in crop pixels. `history`: a temporal model's previous
        frames' `inputs`, (N, k, W), most recent first (None: each face alone)."""
        return self.decoder(to)(self.inputs(faces, to, marks, source), history).clamp(0, 1)
