"""Labels every output as synthetic: the invisible watermark on the pixels, a metadata tag
(PNG text chunk, JPEG comment, MP4/MOV/MKV container comment) and, where the format takes one
(JPEG, PNG, MP4, MOV), a signed C2PA content-credentials manifest."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from .. import __version__
from ..media.files import atomic_write_bytes
from . import credentials, watermark

TAG_KEY = "facepair"
OURS = "synthetic media: face swapped by a trained algorithm (facepair"   # what every version writes
TAG = f"{OURS} {__version__}); compositeWithTrainedAlgorithmicMedia"


def is_ours(text: str | None) -> bool:
    """Whether a tag's text is the one facepair writes (a mere mention of "synthetic" is not)."""
    return bool(text) and OURS in text


def marker(yuv420: bool = False):
    """The one place outputs get their watermark: a function that adds both marks (the public
    one and this installation's, its key made on first use) to a picture, as `watermark.embed`
    does, or as `embed_i420` for a video encoder fed YUV 4:2:0."""
    key = credentials.watermark_key()
    embed = watermark.embed_i420 if yuv420 else watermark.embed
    return lambda rgb: embed(rgb, key)


def write_image(path: Path, rgb: np.ndarray, quality: int = 95, alpha: np.ndarray | None = None) -> None:
    """Watermark the image and write it with the tag, atomically. Format from the suffix;
    `alpha`: a transparency kept where the format holds one (not JPEG)."""
    atomic_write_bytes(Path(path), image_bytes(path, rgb, quality, alpha), follow_links=True)  # a user's output


def image_bytes(path: Path, rgb: np.ndarray, quality: int = 95, alpha: np.ndarray | None = None,
                png_level: int = 6) -> bytes:
    """The file write_image writes to `path` (watermark, tag, signed manifest), as bytes: for
    one picture written under several names (a training preview), labelled and signed once.
    `png_level`: zlib's effort for a PNG (1: about 4x faster, files about a quarter larger)."""
    img = Image.fromarray(marker()(rgb))
    suffix = Path(path).suffix.lower()
    if alpha is not None and alpha.shape == rgb.shape[:2] and suffix not in (".jpg", ".jpeg", ".bmp"):
        img.putalpha(Image.fromarray(alpha))
    buf = io.BytesIO()
    if suffix in (".jpg", ".jpeg"):
        img.save(buf, "JPEG", quality=quality, comment=f"{TAG_KEY}: {TAG}".encode())
    elif suffix == ".png":
        info = PngImagePlugin.PngInfo()
        info.add_text(TAG_KEY, TAG)
        img.save(buf, "PNG", pnginfo=info, compress_level=png_level)
    else:
        img.save(buf, Image.registered_extensions().get(suffix, "PNG"))
    data = buf.getvalue()
    return attach_credentials(data, path) if credentials.supported(path) else data


def attach_credentials(data: bytes, path: Path) -> bytes:
    """`data` with a signed manifest; on a signing failure, unchanged plus a warning (the
    watermark and tag still label it)."""
    try:
        return credentials.sign_bytes(data, Path(path).suffix, Path(path).name)
    except Exception as e:  # noqa: BLE001 - any SDK or key-file failure
        warnings.warn(f"content credentials not attached to {path}: {e}")
        return data


def sign_video(path: Path, title: str) -> None:
    """Attach the signed manifest to a finished MP4/MOV in place (warn on failure, keep the file)."""
    if not credentials.supported(path):
        return
    try:
        credentials.sign_file(path, title)
    except Exception as e:  # noqa: BLE001
        warnings.warn(f"content credentials not attached to {path}: {e}")


def image_tag(path: Path) -> str | None:
    """The image's tag (PNG text chunk or JPEG comment) where it calls the image synthetic,
    whoever wrote it: `is_ours` tells."""
    try:
        with Image.open(path) as img:
            text = img.info.get(TAG_KEY) or img.info.get("comment")
    except Exception:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text if text and "synthetic" in text.lower() else None
