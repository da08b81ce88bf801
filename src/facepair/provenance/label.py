"""Labels every output as synthetic: the invisible watermark on the pixels, a metadata tag
(PNG text chunk, JPEG comment, WebP XMP description, TIFF image description, MP4/MOV/MKV
container comment; BMP holds none) and, where the format takes one (JPEG, PNG, WebP, TIFF, MP4,
MOV), a signed C2PA content-credentials manifest."""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from xml.sax.saxutils import escape, unescape

import numpy as np
from PIL import Image, PngImagePlugin

from .. import __version__
from ..media.files import atomic_write_bytes
from ..media.image import open_picture
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


def _xmp(text: str) -> bytes:
    """An XMP packet whose description is `text` (WebP's place for a tag)."""
    return ('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
            'rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:description><rdf:Alt>'
            f'<rdf:li xml:lang="x-default">{escape(text)}</rdf:li></rdf:Alt></dc:description>'
            '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="r"?>').encode()


TAGGED = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".mp4", ".m4v", ".mov", ".mkv"}


def labels(path, unsigned: int = 0) -> str:
    """What an output written at `path` carries, in words (a folder: by each file's format);
    `unsigned`: files whose manifest could not be attached (a warning said why)."""
    suffix = Path(path).suffix.lower()
    if not suffix:
        said = "watermark, and a tag and a signed C2PA manifest where the format takes them"
        return said + (f"; the manifest could not be attached to {unsigned} of them" if unsigned else "")
    signed = credentials.supported(path) and not unsigned
    said = ", ".join(["watermark"] + (["tag"] if suffix in TAGGED else []) + (["signed C2PA manifest"] if signed else []))
    if unsigned:
        said += "; the C2PA manifest could not be attached"
    return said + ("" if suffix in TAGGED else f" ({suffix[1:].upper()} holds no tag or manifest)")


def write_image(path: Path, rgb: np.ndarray, quality: int = 95, alpha: np.ndarray | None = None) -> bool:
    """Watermark the image and write it with the tag, atomically. Format from the suffix;
    `alpha`: a transparency kept where the format holds one (not JPEG). -> False where the
    format takes a manifest and it could not be attached (a warning says why)."""
    data, signed = _labelled(path, rgb, quality, alpha)
    atomic_write_bytes(Path(path), data, follow_links=True)  # a user's output
    return signed


def image_bytes(path: Path, rgb: np.ndarray, quality: int = 95, alpha: np.ndarray | None = None,
                png_level: int = 6) -> bytes:
    """The file write_image writes to `path` (watermark, tag, signed manifest), as bytes: for
    one picture written under several names (a training preview), labelled and signed once.
    `png_level`: zlib's effort for a PNG (1: about 4x faster, files about a quarter larger)."""
    return _labelled(path, rgb, quality, alpha, png_level)[0]


def _labelled(path: Path, rgb: np.ndarray, quality: int = 95, alpha: np.ndarray | None = None,
              png_level: int = 6) -> tuple[bytes, bool]:
    """image_bytes, and whether the manifest is attached (True too where the format takes none)."""
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
    elif suffix == ".webp":
        img.save(buf, "WEBP", quality=quality, xmp=_xmp(f"{TAG_KEY}: {TAG}"))
    elif suffix in (".tif", ".tiff"):
        img.save(buf, "TIFF", tiffinfo={270: f"{TAG_KEY}: {TAG}"})    # ImageDescription
    else:
        img.save(buf, Image.registered_extensions().get(suffix, "PNG"))
    data = buf.getvalue()
    return attach_credentials(data, path) if credentials.supported(path) else (data, True)


def attach_credentials(data: bytes, path: Path) -> tuple[bytes, bool]:
    """(`data` with a signed manifest, True); on a signing failure, (`data` unchanged, False)
    and a warning (the watermark and tag still label it)."""
    try:
        return credentials.sign_bytes(data, Path(path).suffix, Path(path).name), True
    except Exception as e:  # noqa: BLE001 - any SDK or key-file failure
        warnings.warn(f"content credentials not attached to {path}: {e}")
        return data, False


def sign_video(path: Path, title: str) -> bool:
    """Attach the signed manifest to a finished MP4/MOV in place -> False where it could not be
    (a warning says why; the file is kept, its watermark and tag label it)."""
    if not credentials.supported(path):
        return True
    try:
        credentials.sign_file(path, title)
        return True
    except Exception as e:  # noqa: BLE001
        warnings.warn(f"content credentials not attached to {path}: {e}")
        return False


def _xmp_description(xmp: bytes) -> str | None:
    """The first <rdf:li> of the XMP's <dc:description>. Found by plain searches, each once
    through the packet: the regular expression it was (`<dc:description>.*?<rdf:li[^>]*>(.*?)
    </rdf:li>`) took time growing with the cube of a crafted packet's length (60 KB: minutes),
    holding Python's lock, so one file checked stopped the whole web app."""
    i = xmp.find(b"<dc:description>")
    j = xmp.find(b"<rdf:li", i) if i >= 0 else -1
    k = xmp.find(b">", j) if j >= 0 else -1
    e = xmp.find(b"</rdf:li>", k) if k >= 0 else -1
    return unescape(xmp[k + 1:e].decode("utf-8", "replace")) if e >= 0 else None


def image_tag(path: Path) -> str | None:
    """The image's tag (PNG text chunk, JPEG comment, WebP XMP, TIFF image description) where
    it calls the image synthetic, whoever wrote it: `is_ours` tells."""
    try:
        with open_picture(path) as img:
            text = img.info.get(TAG_KEY) or img.info.get("comment") \
                or (img.tag_v2.get(270) if hasattr(img, "tag_v2") else None)
            xmp = img.info.get("xmp")
    except Exception:
        return None
    if not text and xmp:                        # the XMP description's text
        text = _xmp_description(xmp if isinstance(xmp, bytes) else str(xmp).encode("utf-8", "replace"))
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text if text and "synthetic" in text.lower() else None
