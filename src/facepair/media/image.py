"""Pictures: finding image files, reading and writing them as RGB uint8 (OpenCV)."""
from __future__ import annotations

import io
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np
from PIL import Image, ImageOps

from ..errors import FacepairError, TooLarge, UnreadableMedia
from .files import as_list, atomic_write_bytes, once

# OpenCV's log lines about a file (a TIFF's C2PA manifest tag: "Unknown field with tag 52545"; a
# BMP cut short: "[ERROR:0@0.3] global loadsave.cpp ... can't read data") go to stderr beside our
# own: none. What it fails to read, imdecode's None says, and facepair says in one line
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
# pictures facepair does not read (a phone's HEIC, a GIF, a camera's raw): a folder's are named
OTHER_PICTURES = {".gif", ".heic", ".heif", ".avif", ".jxl", ".psd", ".dng", ".cr2", ".nef", ".arw"}


def expand_inputs(paths: Iterable[str | os.PathLike], keep=None, passed: list | None = None) -> list[Path]:
    """Files and folders (recursive, sorted) -> files, each file once (a file named twice, or
    in a folder and named too, or through a link beside it, is taken where first met: extract
    stored its faces twice); `keep`: which files found in a folder to take (named files are all
    taken), those it does not take added to `passed`. A missing path is a user error."""
    files: list[Path] = []
    for p in map(Path, as_list(paths)):
        if not p.exists():
            raise FacepairError(f"input not found: {p}")
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
            files += [f for f in found if keep is None or keep(f)]
            if passed is not None and keep is not None:
                passed += [f for f in found if not keep(f)]
        else:
            files.append(p)
    return once(files)


def warn_unread(files: list[Path], where) -> None:
    """A warning naming the pictures among a folder's `files` that facepair does not read: passed
    over, as before, but no longer in silence (an iPhone's folder came out part empty)."""
    other = [f for f in files if f.suffix.lower() in OTHER_PICTURES]
    if other:
        warnings.warn(f"{len(other)} picture(s) in {where} of a format facepair does not read, passed "
                      f"over (convert them to JPEG or PNG first): {other[0]}{' ...' if len(other) > 1 else ''}")


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


# the most pixels a picture may have: Pillow's decompression-bomb limit (89 megapixels, about 3x
# a 30-megapixel camera's). A small file can declare a huge picture (a PNG of zeros, 2 MB, of
# 1,000,000 x 720 px), which decoding alone would turn into gigabytes
MAX_PIXELS = Image.MAX_IMAGE_PIXELS
BOMB = (MAX_PIXELS + 1, 1)      # picture_size of a file Pillow will not even size (over 2x the limit)


@contextmanager
def open_picture(src):
    """Pillow's Image.open (a path or a file object) without its warnings, which would print as
    lines of their own beside facepair's one line (a TIFF cut short: "Corrupt EXIF data.
    Expecting to read 2 bytes but only got 0"; a picture over Pillow's pixel limit)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(src) as im:
            yield im


def picture_size(data: bytes) -> tuple[int, int]:
    """(width, height) from an image file's header, before anything is decoded; a file Pillow
    cannot identify is not a picture facepair reads (every format of IMAGE_EXTS is Pillow's)."""
    try:
        with open_picture(io.BytesIO(data)) as im:
            return im.size
    except Image.DecompressionBombError:
        return BOMB
    except Exception:           # Pillow raises several types for what it cannot read
        return (0, 0)


def _intact_png(data: bytes) -> bool:
    """False for a PNG whose chunks are cut short or fail their checksums (an interrupted
    download), which libpng would report on stderr itself ("libpng error: PNG input buffer is
    incomplete") before OpenCV gives up; Pillow reads the chunks without decoding the pixels
    and raises instead (2 ms for a 2.4 MB 1080p PNG, against 42 ms to decode it, on an AMD EPYC
    Zen 4). Any other format: True."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return True
    try:
        with open_picture(io.BytesIO(data)) as im:
            im.verify()
        return True
    except Exception:           # SyntaxError, OSError, struct.error: all "damaged"
        return False


def _without_iccp(raw: bytes) -> bytes:
    """A PNG's bytes without its colour profile chunk (iCCP), which OpenCV does not apply:
    libpng printed a line of its own on stderr for a grey PNG carrying an RGB profile ("libpng
    warning: iCCP: ... RGB color space not permitted on grayscale PNG") beside facepair's.
    Anything else, or a PNG without one: `raw` itself."""
    idat = raw.find(b"IDAT", 0, 1 << 20)            # (a profile comes before the first IDAT)
    if not raw.startswith(b"\x89PNG\r\n\x1a\n") or raw.find(b"iCCP", 0, idat if idat >= 0 else 1 << 20) < 0:
        return raw
    out, i = [], 8
    while i + 8 <= len(raw):
        n = int.from_bytes(raw[i:i + 4], "big")
        if raw[i + 4:i + 8] != b"iCCP":
            out.append(raw[i:i + 12 + n])
        i += 12 + n
    return raw[:8] + b"".join(out)


def read_image(path: Path) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3). One that is not a picture, or that declares more
    than MAX_PIXELS, is refused before it is decoded."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as e:                # gone, a folder, not readable: skipped where files may be
        raise UnreadableMedia(f"cannot read image {path}: {e.strerror or e}") from None
    raw = data.tobytes()
    w, h = picture_size(raw) if data.size else (0, 0)
    if w * h > MAX_PIXELS:
        most = f"{MAX_PIXELS / 1e6:.0f} megapixels"
        raise TooLarge(f"picture too large to read: {path} declares "
                       + (f"more than {most}" if (w, h) == BOMB else f"{w} x {h} pixels (at most {most})"))
    img = cv2.imdecode(np.frombuffer(_without_iccp(raw), np.uint8), cv2.IMREAD_COLOR) \
        if w * h and _intact_png(raw) else None
    if img is None:
        raise UnreadableMedia(f"cannot decode image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def picture_frames(path: Path) -> int:
    """How many pictures the file holds (an animated PNG or WebP, a TIFF's pages: more than 1),
    read from its header; 1 where it cannot tell. A JPEG's second picture (a phone's HDR gain map
    or depth map, which Pillow opens as MPO) is not a picture of its own."""
    try:
        with open_picture(path) as im:
            return int(getattr(im, "n_frames", 1) or 1) if im.format in ("PNG", "WEBP", "TIFF") else 1
    except Exception:           # Pillow raises several types for what it cannot read
        return 1


def read_alpha(path: Path, shape: tuple | None = None) -> np.ndarray | None:
    """A picture's transparency (H, W) uint8, turned upright as read_image turns the picture,
    or None where it has none (or it is all opaque): what an image swap writes back, so that a
    transparent area stays transparent rather than showing the colours stored under it.
    `shape`: the (H, W) of the picture as read_image read it; an alpha that does not fit it
    (a TIFF whose orientation OpenCV and Pillow read otherwise) is dropped with a warning (it
    was dropped without a word)."""
    try:
        with open_picture(path) as im:
            if "A" not in im.getbands() and "transparency" not in im.info:
                return None
            im = ImageOps.exif_transpose(im).convert("RGBA")
            alpha = np.asarray(im.getchannel("A"))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    if shape is not None and alpha.shape != tuple(shape):
        warnings.warn(f"{path}: its transparency does not fit the picture as read: written opaque")
        return None
    return None if alpha.min() == 255 else alpha


def write_image(path: Path, rgb: np.ndarray) -> None:
    """An unlabelled picture (a face set's crop, a source frame) as a new file renamed into
    place: a file or hard link already at the name is replaced, never written into."""
    ok, data = cv2.imencode(Path(path).suffix or ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise FacepairError(f"cannot write image {path}")
    atomic_write_bytes(Path(path), data.tobytes(), sync=False)
