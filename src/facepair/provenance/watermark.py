"""An invisible watermark that survives rescaling, cropping and re-encoding.

Written here: the robust marks we know of (TrustMark, Video Seal) download network weights at run
time, and `invisible-watermark`'s dwtDct is lost on a resize. The scheme is the classic periodic
spread-spectrum mark (a keyed tile repeated over the picture), which makes crops and rescales
something the reader can measure rather than something that breaks it.

Making it (`embed`):
- A keyed pattern fills one square tile, 1/11.25 of the picture's shorter side wide (64 px on
  720p), and the tile repeats over the whole picture. Inside a tile the pattern is a sum of waves
  of 3 to 8 cycles per tile (periods 8-21 px on 720p): fine enough to hide in texture, coarse
  enough to outlive halving the picture and lossy codecs. A 64-bit payload gives the signs of 64
  keyed sub-patterns whose sum is the tile.
- Perceptual masking: the pattern's amplitude follows the local texture of the picture (local
  standard deviation of the grey image): zero where the picture is flat, growing with texture up
  to CAP grey levels, and scaled down where needed to keep each picture at PSNR >= PSNR_MIN.
  The same offset goes to R, G and B (brightness only); it is rounded with a keyed dither, so a
  fraction of a grey level still moves the picture by that much on average and a zero stays zero.

Reading it (`read`):
- The residual of the grey picture (band-pass, then divided by its local energy); video frames'
  residuals add up, so the mark grows against moving content.
- Scale: a repeating tile puts the residual's spectrum on a lattice of lines; a comb over
  candidate tile periods finds the period, whatever the rescale (0.4x to 2x of the made size).
- Offset: the residual folded modulo that period into one tile and cross-correlated with the
  keyed tile (FFT) peaks at the grid's offset, whatever the crop. The height of that peak over the
  spread of the whole correlation surface (a z-score) is the evidence: found at z >= Z_MIN.
- Bits: the folded tile fitted to the 64 sub-patterns; `bits` counts the ones that agree.

The key is in this public code: anyone can read, strip or forge the mark. It labels honest
outputs; the signed C2PA manifest is the part that can't be forged.

The installation mark (`embed(rgb, key)`, `read_key`): beside the public tile, a second pattern
made from a secret key of this installation (credentials.watermark_key), which no one without
the key can forge. It takes KEY_SHARE of the mark's energy (the total is unchanged, so the
picture is changed no more than before) and lives on the same grid, in a super-tile KEY_SPAN x
KEY_SPAN public tiles wide whose waves lie in the same band but between the public tile's
lines: the public reader does not see it, and it does not see the public mark or another
key's pattern beyond chance. It is read where the public reader found the grid, at the
KEY_SPAN**2 places the super-tile can start: found at z >= Z_KEY and at least KEY_RATIO of the
z that the public mark's z predicts for it (which keeps a strong mark of another key from
passing as this one's; docs/provenance.md gives the false-positive bounds).
"""
from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

KEY = 0x5EED_FACE
BITS = 64
PAYLOAD = np.unpackbits(np.frombuffer(hashlib.sha256(b"facepair: synthetic media v1").digest()[:8],
                                      dtype=np.uint8)).astype(np.int8)
GRID = 64                   # the tile's resolution for reading (cells per side)
BAND = (3.0, 8.0)           # cycles per tile: the pattern's band
TILE_SHARE = 11.25          # the tile is the shorter side / TILE_SHARE ...
TILE_MIN, TILE_MAX = 40, 256  # ... within these bounds (px)
FLAT = 1.5                  # local std (grey levels) at or below which the picture is left alone
GAIN = 0.7                  # amplitude per grey level of local std above FLAT ...
CAP = 3.0                   # ... up to this amplitude (grey levels)
PSNR_MIN = 46.0             # each marked picture is held at least this close to the original
Z_MIN = 8.0                 # z-score of the correlation peak at which the mark counts as found
READ_SIZE = 720             # pictures are read at most this size (shorter side)
PERIODS = (0.4, 2.0)        # rescales searched, relative to the tile of the read picture's size
KEY_SHARE = 0.2             # share of the mark's energy given to the installation mark
KEY_SPAN = 4                # the installation mark's super-tile spans 4 x 4 public tiles
Z_KEY = 7.0                 # z at which the installation mark counts as found (16 places tried) ...
KEY_RATIO = 0.5             # ... when also at least this share of the z the public mark predicts
KEY_DOMAIN = b"facepair installation mark v1\0"


def _band() -> tuple[np.ndarray, np.ndarray]:
    """The pattern's spectral lines (m, n) in cycles per tile (x, y), one of each +- pair. None
    lies on an axis: straight horizontal and vertical edges (frame borders, letterboxes) fold
    into the tile's axis lines, so those carry no mark and are not read."""
    k = int(BAND[1])
    m, n = np.meshgrid(np.arange(1, k + 1), np.arange(-k, k + 1))
    r = np.hypot(m, n)
    keep = (r >= BAND[0]) & (r <= BAND[1]) & (n != 0)
    return m[keep], n[keep]


LINE_M, LINE_N = _band()


@lru_cache(maxsize=1)
def _basis() -> np.ndarray:
    """(BITS, lines) complex: each payload bit's keyed sub-pattern, as one unit phasor per line."""
    rng = np.random.default_rng(KEY)
    return np.exp(2j * np.pi * rng.random((BITS, len(LINE_M))))


def _coefficients() -> np.ndarray:
    return ((2.0 * PAYLOAD - 1) @ _basis()) / math.sqrt(BITS)


def _key_band() -> tuple[np.ndarray, np.ndarray]:
    """The installation mark's lines (m, n), in cycles per super-tile: the public band scaled by
    KEY_SPAN, less the public tile's own lines (both multiples of KEY_SPAN) and the axes."""
    k = KEY_SPAN
    m, n = np.meshgrid(np.arange(1, int(BAND[1]) * k + 1), np.arange(-int(BAND[1]) * k, int(BAND[1]) * k + 1))
    r = np.hypot(m, n)
    keep = (r >= BAND[0] * k) & (r <= BAND[1] * k) & (n != 0) & ~((m % k == 0) & (n % k == 0))
    return m[keep], n[keep]


KEY_M, KEY_N = _key_band()


def key_id(key: bytes) -> str:
    """A short public name of a key (8 hex digits of a hash): says which key, reveals nothing."""
    return hashlib.sha256(b"facepair key id\0" + key).hexdigest()[:8]


def _render(lines_m, lines_n, coefficients, size: int) -> np.ndarray:
    spec = np.zeros((size, size // 2 + 1), np.complex128)
    spec[lines_n % size, lines_m] = coefficients
    t = np.fft.irfft2(spec, s=(size, size))
    return (t / t.std()).astype(np.float32)


@lru_cache(maxsize=4)
def tile(size: int) -> np.ndarray:
    """The keyed tile rendered at `size` x `size` px, unit RMS (float32)."""
    return _render(LINE_M, LINE_N, _coefficients(), size)


@lru_cache(maxsize=8)
def key_tile(key: bytes, size: int) -> np.ndarray:
    """The installation mark's super-tile for a secret `key`, `size` x `size` px (KEY_SPAN public
    tiles wide), unit RMS: a unit wave on each of its lines, phases drawn from SHAKE-256 of the
    key."""
    stream = hashlib.shake_256(KEY_DOMAIN + bytes(key)).digest(8 * len(KEY_M))
    phase = np.frombuffer(stream, "<u8") / 2.0 ** 64
    return _render(KEY_M, KEY_N, np.exp(2j * np.pi * phase), size)


def tile_size(h: int, w: int) -> int:
    return int(np.clip(round(min(h, w) / TILE_SHARE), TILE_MIN, TILE_MAX))


def _tiled(t: np.ndarray, h: int, w: int) -> np.ndarray:
    reps = (-(-h // t.shape[0]), -(-w // t.shape[1]))
    return np.tile(t, reps)[:h, :w]


@lru_cache(maxsize=4)
def _pattern(h: int, w: int, key: bytes | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The tiled pattern over an (h, w) picture and the keyed rounding dither in [-0.5, 0.5).
    With an installation `key`: the public tile at sqrt(1 - KEY_SHARE) and the key's super-tile
    at sqrt(KEY_SHARE), on the same grid (their waves share no line, so the sum keeps unit RMS)."""
    size = tile_size(h, w)
    pattern = _tiled(tile(size), h, w)
    if key is not None:
        pattern = (math.sqrt(1 - KEY_SHARE) * pattern +
                   math.sqrt(KEY_SHARE) * _tiled(key_tile(key, KEY_SPAN * size), h, w))
    dither = np.random.default_rng([KEY, h, w]).random((h, w), dtype=np.float32) - 0.5
    return np.ascontiguousarray(pattern, dtype=np.float32), dither


_work = threading.local()      # full-size float buffers, reused frame after frame


def _buffers(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Two (h, w) float32 buffers of this thread. Fresh 4 MB arrays per 720p frame cost more in
    page faults than the arithmetic does (measured: 8 ms against 4 ms per frame)."""
    if getattr(_work, "shape", None) != (h, w):
        _work.shape = (h, w)
        _work.bufs = (np.empty((h, w), np.float32), np.empty((h, w), np.float32))
    return _work.bufs


def strength(grey: np.ndarray, unit: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
    """The mask: the mark's amplitude (grey levels) at each pixel of a uint8 grey picture, from
    its local standard deviation over about 9x9 px (times `unit`: 255/219 for video luma),
    measured on a copy shrunk up to 4x: the texture measure is smooth anyway, and it keeps the
    mark within a few ms on a 720p frame."""
    h, w = grey.shape
    f = int(np.clip(min(h, w) // 180, 1, 4))
    small = cv2.resize(grey, (w // f, h // f), interpolation=cv2.INTER_AREA) if f > 1 else grey
    g = small.astype(np.float32) * unit
    k = (9 // f) | 1
    mu = cv2.blur(g, (k, k))
    sd = cv2.sqrt(cv2.max(cv2.blur(g * g, (k, k)) - mu * mu, 0))
    s = np.minimum(GAIN * np.maximum(sd - FLAT, 0), CAP)
    s = cv2.erode(s, np.ones((3, 3), np.uint8))          # flat neighbours of texture stay flat
    limit = 255.0 * 10 ** (-PSNR_MIN / 20)               # RMS change allowed
    rms = float(np.sqrt(np.mean(s * s)))
    if rms > limit:
        s *= limit / rms
    if f == 1:
        return s
    return cv2.resize(s, (w, h), dst=out, interpolation=cv2.INTER_LINEAR)


def _offsets(grey: np.ndarray, unit: float = 1.0, key: bytes | None = None) -> np.ndarray:
    """The mark's offset per pixel (float32, in the units of `grey`), dithered so that rounding
    it is unbiased. The result lives in this thread's buffer until the next call."""
    pattern, dither = _pattern(*grey.shape, key)
    mask, offsets = _buffers(*grey.shape)
    cv2.multiply(strength(grey, unit, out=mask), pattern, dst=offsets, scale=1 / unit)
    return cv2.add(offsets, dither, dst=offsets)


def _small(rgb: np.ndarray) -> bool:
    return min(rgb.shape[:2]) < 2 * TILE_MIN


def embed(rgb: np.ndarray, key: bytes | None = None) -> np.ndarray:
    """The image (uint8 RGB, H x W x 3) with the watermark added to its brightness: the public
    mark, and with `key` (an installation's secret key) the installation mark too."""
    if _small(rgb):
        return rgb                                  # too small to carry the tile twice
    rgb = np.ascontiguousarray(rgb)
    offsets = _offsets(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), key=key)
    return cv2.add(rgb, cv2.merge([offsets] * 3), dtype=cv2.CV_8U)


def embed_i420(rgb: np.ndarray, key: bytes | None = None) -> np.ndarray:
    """The same mark, for a video encoder: the frame as YUV 4:2:0 (BT.601, limited range, the
    (H * 3/2, W) layout of yuv420p) with the mark added to Y. OpenCV's conversion is 5x faster
    than the encoder's own, which pays for most of the mark. Even H and W only."""
    rgb = np.ascontiguousarray(rgb)
    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    if not _small(rgb):
        y = yuv[:rgb.shape[0]]
        cv2.add(y, _offsets(y, 255 / 219, key), dst=y, dtype=cv2.CV_8U)
    return yuv


def residual(rgb: np.ndarray) -> np.ndarray | None:
    """What the reader looks at: the grey picture band-passed and divided by its local energy,
    at most READ_SIZE on its shorter side and its middle part at most 16 times that long, so a
    picture of extreme shape (a 720 px strip 100,000 px long) costs no more than a panorama
    (None if too small to hold the tile twice)."""
    h, w = rgb.shape[:2]
    long = 16 * min(h, w)
    if max(h, w) > long:                        # a crop keeps the mark's scale: still readable
        y, x = max(h - long, 0) // 2, max(w - long, 0) // 2
        rgb = rgb[y:y + long, x:x + long]
        h, w = rgb.shape[:2]
    f = READ_SIZE / min(h, w)
    if f < 1:
        rgb = cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    g = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
    if min(g.shape) <= 2 * TILE_MIN * PERIODS[0]:      # (at 32 px the reader had no period to try)
        return None
    hp = cv2.GaussianBlur(g, (0, 0), 0.7) - _smooth(g)
    energy = cv2.sqrt(_smooth(hp * hp)) + 1.0
    return np.clip(hp / energy, -4, 4)


def _smooth(x: np.ndarray) -> np.ndarray:
    """A Gaussian blur of sigma 8 px, computed at a quarter of the size (15x faster)."""
    h, w = x.shape
    small = cv2.resize(x, (max(w // 4, 1), max(h // 4, 1)), interpolation=cv2.INTER_AREA)
    return cv2.resize(cv2.GaussianBlur(small, (0, 0), 2), (w, h), interpolation=cv2.INTER_LINEAR)


@dataclass
class Reading:
    """What `read` found: z (evidence; found at >= Z_MIN), the payload bits that agree, and the
    tile grid's period (px, x and y) and offset (px) in the picture as read."""
    z: float
    bits: int
    period: tuple[float, float]
    offset: tuple[float, float]

    @property
    def found(self) -> bool:
        return self.z >= Z_MIN


def _comb(spectrum: np.ndarray, shape: tuple[int, int], px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Mean whitened power on the lattice of a tile of period (px, py), for arrays of periods."""
    h, w = shape
    u = LINE_M[None, :] * (w / px[:, None])
    v = LINE_N[None, :] * (h / py[:, None])
    ok = (u < w / 2 - 1) & (np.abs(v) < h / 2 - 1)
    best = np.zeros(u.shape, np.float32)
    for du in (0, 1):                               # a line between bins: its best neighbour
        for dv in (0, 1):
            uu = np.clip(np.floor(u).astype(int) + du, 0, spectrum.shape[1] - 1)
            vv = (np.floor(v).astype(int) + dv) % h
            best = np.maximum(best, spectrum[vv, uu])
    n = ok.sum(1)
    return np.where(n >= 12, (best * ok).sum(1) / np.maximum(n, 1), 0)


def _fold(r: np.ndarray, px: float, py: float, grid: int = GRID) -> np.ndarray:
    """The residual summed modulo the period into one grid x grid tile."""
    h, w = r.shape
    by = ((np.arange(h) % py) * (grid / py)).astype(np.int64)
    bx = ((np.arange(w) % px) * (grid / px)).astype(np.int64)
    idx = (by[:, None] * grid + bx[None, :]).ravel()
    return np.bincount(idx, r.ravel(), grid * grid).reshape(grid, grid)


@lru_cache(maxsize=1)
def _tile_spectrum() -> tuple[np.ndarray, np.ndarray]:
    """The keyed tile's conjugate spectrum, and its autocorrelation normalised to 1 at 0."""
    spec = np.fft.rfft2(tile(GRID).astype(np.float64))
    auto = np.fft.irfft2(np.abs(spec) ** 2, s=(GRID, GRID))
    return np.conj(spec), auto / auto[0, 0]


def _correlate(fold: np.ndarray) -> tuple[float, tuple[int, int]]:
    """The offset where the fold matches the keyed tile best, and the z-score of that match: its
    height over the spread of the correlation at all offsets, once the peak's own echo (the
    tile's autocorrelation, which a strong mark spreads over every offset) is taken out."""
    spec, auto = _tile_spectrum()
    c = np.fft.irfft2(np.fft.rfft2(fold) * spec, s=fold.shape)
    oy, ox = np.unravel_index(int(np.argmax(c)), c.shape)
    rest = c - c[oy, ox] * np.roll(auto, (oy, ox), axis=(0, 1))
    rest[oy, ox] = np.median(rest)
    med = np.median(rest)
    spread = 1.4826 * np.median(np.abs(rest - med)) + 1e-12
    return float((c[oy, ox] - med) / spread), (int(oy), int(ox))


def _bits(fold: np.ndarray, offset: tuple[int, int]) -> int:
    aligned = np.roll(fold, (-offset[0], -offset[1]), axis=(0, 1))
    y = np.fft.rfft2(aligned)[LINE_N % GRID, LINE_M]
    a = np.concatenate([_basis().real, _basis().imag], axis=1).T
    beta = np.linalg.lstsq(a, np.concatenate([y.real, y.imag]), rcond=None)[0]
    return int(np.sum((beta > 0) == (PAYLOAD > 0)))


def read(r: np.ndarray) -> Reading:
    """Look for the mark in a residual (one picture's, or several frames' summed)."""
    h, w = r.shape
    spec = np.abs(np.fft.rfft2(r - r.mean())) ** 2
    shifted = np.fft.fftshift(spec, axes=0).astype(np.float32)
    floor = np.fft.ifftshift(cv2.GaussianBlur(shifted, (0, 0), 4), axes=0)
    white = spec / (floor + 1e-6 * floor.mean() + 1e-12)
    # 1. the period: the comb over isotropic candidates, then x and y apart near the best ones
    t0 = tile_size(h, w)
    lo, hi = max(t0 * PERIODS[0], 16), min(t0 * PERIODS[1], min(h, w) / 2)
    cands = np.exp(np.arange(np.log(lo), np.log(hi), 0.003))
    score = _comb(white, (h, w), cands, cands)
    peaks = [i for i in np.argsort(score)[::-1] if
             (i == 0 or score[i] >= score[i - 1]) and (i == len(score) - 1 or score[i] >= score[i + 1])]
    best = Reading(-np.inf, 0, (0.0, 0.0), (0.0, 0.0))
    steps = np.exp(np.arange(-4, 5) * 0.0015)
    for i in peaks[:3]:
        px, py = np.meshgrid(cands[i] * steps, cands[i] * steps)
        s = _comb(white, (h, w), px.ravel(), py.ravel())
        j = int(np.argmax(s))
        px0, py0 = float(px.ravel()[j]), float(py.ravel()[j])
        # 2. fine period and offset: the fold's correlation with the keyed tile
        for fx in (0.9985, 1.0, 1.0015):
            for fy in (0.9985, 1.0, 1.0015):
                fold = _fold(r, px0 * fx, py0 * fy)
                z, off = _correlate(fold)
                if z > best.z:
                    best = Reading(z, _bits(fold, off), (px0 * fx, py0 * fy),
                                   (off[1] * px0 * fx / GRID, off[0] * py0 * fy / GRID))
    return best


@dataclass
class KeyReading:
    """What `read_key` found: z of the installation mark at the public grid (found at >= Z_KEY
    and >= KEY_RATIO of `expected`), and `expected`: the z the public reading predicts for it."""
    z: float
    expected: float

    @property
    def found(self) -> bool:
        return self.z >= Z_KEY and self.z >= KEY_RATIO * self.expected


@lru_cache(maxsize=4)
def _key_spectrum(key: bytes) -> tuple[np.ndarray, np.ndarray]:
    spec = np.fft.rfft2(key_tile(key, KEY_SPAN * GRID).astype(np.float64))
    auto = np.fft.irfft2(np.abs(spec) ** 2, s=(KEY_SPAN * GRID,) * 2)
    return np.conj(spec), auto / auto[0, 0]


def read_key(r: np.ndarray, public: Reading, key: bytes) -> KeyReading:
    """Look for the installation mark of `key` in a residual, on the grid the public reading
    found: the residual folded at KEY_SPAN times its period and correlated with the key's
    super-tile; the super-tile starts at one of KEY_SPAN**2 tile corners of the grid, the best
    one is taken. z as for the public mark: the match over the spread of the correlation at
    every offset, the peak's echo taken out."""
    px, py = public.period
    g = KEY_SPAN * GRID
    expected = max(public.z, 0.0) * math.sqrt(KEY_SHARE / (1 - KEY_SHARE))
    if not (px > 0 and py > 0):
        return KeyReading(-np.inf, expected)
    fold = _fold(r, KEY_SPAN * px, KEY_SPAN * py, g)
    spec, auto = _key_spectrum(bytes(key))
    c = np.fft.irfft2(np.fft.rfft2(fold) * spec, s=fold.shape)
    oy, ox = round(public.offset[1] * GRID / py), round(public.offset[0] * GRID / px)
    corners = [((oy + i * GRID) % g, (ox + j * GRID) % g) for i in range(KEY_SPAN) for j in range(KEY_SPAN)]
    cy, cx = max(corners, key=lambda p: c[p])
    rest = c - c[cy, cx] * np.roll(auto, (cy, cx), axis=(0, 1))
    rest[cy, cx] = np.median(rest)
    med = np.median(rest)
    spread = 1.4826 * np.median(np.abs(rest - med)) + 1e-12
    return KeyReading(float((c[cy, cx] - med) / spread), expected)
