"""The seed's title taken at its word: a transformer sequence-to-sequence encoder and decoders,
the whole model on one screen. FacePair (autoencoder.py) builds these in place of the
convolutional pair when a preset says `arch="seq2seq"`; training, swapping and the landmark cue
are the same.

Encoder (shared): a conv stem cuts the face into patch tokens (8 px patches: 64 tokens for a
64 px face), a transformer encoder mixes them, then `latents` learned queries read them by
cross-attention and each is squeezed to code/latents numbers. That is the bottleneck: the decoder
reaches the source face only through these few code tokens (16 x 32 = the seed's 512 numbers);
with a spatial code the encoder keeps each person apart and swaps fail.
Decoder (one per identity): the target's patch queries attend to each other and, by
cross-attention, to the code tokens (and the landmark cue as one more token), then a light head
turns the token grid into pixels (3x3 convs and pixel shuffles, x2 per step, the last linear).

Temporal (`context` = k > 0): the decoders also attend to the code tokens (and cue) of the k
previous frames, each frame's tokens marked by a learned time embedding. Only earlier frames are
given (causal); where a clip or video has fewer, the earliest one is repeated.

Attention is torch's scaled_dot_product_attention (flash / memory-efficient kernels where the
device has them); every attention weight's name contains `attn`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .presets import ModelConfig


class Attention(nn.Module):
    """Multi-head attention of x over ctx (itself when ctx is None)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.kv, self.out = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)

    def forward(self, x, ctx=None):
        ctx = x if ctx is None else ctx
        (n, t, d), h = x.shape, self.heads
        q = self.q(x).view(n, t, h, d // h).transpose(1, 2)
        k, v = self.kv(ctx).view(n, ctx.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)
        return self.out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, t, d))


class Block(nn.Module):
    """Pre-norm transformer block: self-attention, cross-attention to a context (if given), MLP."""

    def __init__(self, dim: int, heads: int, cross: bool = False, mlp: int = 2):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.cross_attn = (nn.LayerNorm(dim), Attention(dim, heads)) if cross else (None, None)
        self.norm3 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp * dim), nn.GELU(), nn.Linear(mlp * dim, dim))

    def forward(self, x, ctx=None):
        x = x + self.attn(self.norm1(x))
        if self.cross_attn is not None:
            x = x + self.cross_attn(self.norm2(x), ctx)
        return x + self.mlp(self.norm3(x))


def _tokens(n: int, dim: int) -> nn.Parameter:
    return nn.Parameter(torch.randn(1, n, dim) * 0.02)


class TokenEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, p = cfg.dim, cfg.patch
        self.stem = nn.Sequential(nn.Conv2d(3, d // 2, 3, stride=2, padding=1), nn.GELU(),
                                  nn.Conv2d(d // 2, d, p // 2, stride=p // 2))
        self.pos = _tokens((cfg.size // p) ** 2, d)
        self.blocks = nn.ModuleList(Block(d, cfg.heads) for _ in range(cfg.depth))
        self.queries = _tokens(cfg.latents, d)                 # the bottleneck's learned queries
        self.read = Block(d, cfg.heads, cross=True)
        self.norm, self.to_code = nn.LayerNorm(d), nn.Linear(d, cfg.code // cfg.latents)

    def forward(self, x):
        t = self.stem(x).flatten(2).transpose(1, 2) + self.pos
        for block in self.blocks:
            t = block(t)
        z = self.read(self.queries.expand(len(x), -1, -1), t)
        return self.to_code(self.norm(z)).flatten(1)           # (N, code): as the conv encoder's


class TokenDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, self.cfg, self.grid = cfg.dim, cfg, cfg.size // cfg.patch
        self.from_code = nn.Linear(cfg.code // cfg.latents, d)
        self.from_cue = nn.Linear(cfg.cue_width, d) if cfg.cue_points else None
        self.ctx_pos = _tokens(cfg.latents + bool(cfg.cue_points), d)
        self.time_pos = nn.Parameter(torch.randn(1, cfg.context + 1, 1, d) * 0.02) if cfg.context else None
        self.queries = _tokens(self.grid ** 2, d)               # one per output patch
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cross=True) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d)
        head, c = [], d
        for k in range(int(math.log2(cfg.patch))):             # 8 -> 64 px: three x2 steps
            last = k == int(math.log2(cfg.patch)) - 1
            c_out = 3 if last else c // 2
            head += [nn.Conv2d(c, 4 * c_out, 3, padding=1), nn.PixelShuffle(2)] + [nn.GELU()] * (not last)
            c = c_out
        self.head = nn.Sequential(*head)

    def context(self, code):
        """(N, W) decoder inputs (code + cue) -> (N, T, D) context tokens."""
        cfg, n = self.cfg, len(code)
        ctx = self.from_code(code[:, :cfg.code].reshape(n, cfg.latents, -1))
        if self.from_cue is not None:                          # the landmark cue: one more token
            ctx = torch.cat([ctx, self.from_cue(code[:, cfg.code:])[:, None]], 1)
        return ctx + self.ctx_pos

    def forward(self, code, history=None):
        """code: (N, W) this frame's decoder inputs; history: (N, k, W) those of the k previous
        frames, most recent first (temporal models; None: this frame repeated)."""
        n, k = len(code), self.cfg.context
        ctx = self.context(code)
        if k:
            frames = code[:, None].expand(n, k, -1) if history is None else history
            past = self.context(frames.reshape(n * k, -1)).view(n, k, *ctx.shape[1:])
            ctx = (torch.cat([ctx[:, None], past], 1) + self.time_pos).flatten(1, 2)
        t = self.queries.expand(n, -1, -1)
        for block in self.blocks:
            t = block(t, ctx)
        grid = self.norm(t).transpose(1, 2).reshape(n, -1, self.grid, self.grid)
        return self.head(grid)
