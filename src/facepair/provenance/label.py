"""Labels every output as synthetic: the invisible watermark on the pixels plus a metadata tag
(PNG text chunk, JPEG comment, MP4/MOV/MKV container comment)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from .. import __version__
from ..media import atomic_write_bytes
from . import watermark

TAG_KEY = "facepair"
TAG = (f"synthetic media: face swapped by a trained algorithm (facepair {__version__}); "
       "trainedAlgorithmicMedia")


def write_image(path: Path, rgb: np.ndarray, quality: int = 95) -> None:
    """Watermark the image and write it with the tag, atomically. Format from the suffix."""
    img = Image.fromarray(watermark.embed(rgb))
    buf = io.BytesIO()
    suffix = Path(path).suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        img.save(buf, "JPEG", quality=quality, comment=f"{TAG_KEY}: {TAG}".encode())
    elif suffix == ".png":
        info = PngImagePlugin.PngInfo()
        info.add_text(TAG_KEY, TAG)
        img.save(buf, "PNG", pnginfo=info)
    else:
        img.save(buf, Image.registered_extensions().get(suffix, "PNG"))
    atomic_write_bytes(Path(path), buf.getvalue())


def image_tag(path: Path) -> str | None:
    try:
        with Image.open(path) as img:
            text = img.info.get(TAG_KEY) or img.info.get("comment")
    except Exception:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text if text and "synthetic" in text else None
