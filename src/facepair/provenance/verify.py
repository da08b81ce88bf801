"""`facepair verify`: is this file one of ours? Reads the watermark, the metadata tag and the
C2PA manifest back."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from ..errors import FacepairError, UnreadableMedia
from ..media.image import is_image, read_image
from ..media.video import iter_video, open_input
from . import credentials, label, watermark

MAX_FRAMES = 90          # frames of a video read (their residuals add up)


@dataclass
class Verdict:
    path: str
    mark: watermark.Reading | None    # what the watermark reader found (None: picture too small)
    tag: str | None                   # a tag calling the media synthetic, whoever wrote it
    manifest: credentials.Credentials | None = None
    frames: int = 1                   # pictures read for the watermark
    mirrored: bool = False            # the mark was read from the picture flipped left to right

    @property
    def watermark(self) -> bool:
        return self.mark is not None and self.mark.found

    @property
    def our_tag(self) -> bool:
        return label.is_ours(self.tag)

    @property
    def our_manifest(self) -> bool:
        """A manifest facepair signed whose signature and hashes still check out."""
        m = self.manifest
        return m is not None and m.generator == "facepair" and m.state in ("Valid", "Trusted")

    @property
    def marked(self) -> bool:
        """Ours only by our own marks: the watermark, our tag, or our valid manifest."""
        return self.watermark or self.our_tag or self.our_manifest

    def __str__(self):
        wm = f"watermark {'FOUND' if self.watermark else 'not found'}"
        if self.mark is not None:
            m = self.mark
            wm += (f" (z {m.z:.1f}, found at {watermark.Z_MIN:g}; bits agree {m.bits}/"
                   f"{watermark.BITS}; grid {m.period[0]:.1f} x {m.period[1]:.1f} px at offset "
                   f"{m.offset[0]:.0f}, {m.offset[1]:.0f}; {self.frames} "
                   f"{'frame' if self.frames == 1 else 'frames'}"
                   f"{'; the picture was flipped' if self.mirrored and self.watermark else ''})")
        else:
            wm += " (too small to read)"
        tag = "tag FOUND" if self.our_tag else \
            f"no facepair tag (a tag that is not facepair's: {self.tag!r})" if self.tag else "no tag"
        c = self.manifest
        c2pa = (f"C2PA manifest FOUND ({c.generator or 'unknown generator'}, "
                f"{c.source_type.rsplit('/', 1)[-1] or 'no source type'}, {c.state})" if c
                else "no C2PA manifest")
        return (f"{self.path}: {'SYNTHETIC (facepair)' if self.marked else 'no facepair marks'}: "
                f"{wm}; {tag}; {c2pa}")

    def to_json(self) -> dict:
        m, c = self.mark, self.manifest
        return {
            "path": self.path, "synthetic": self.marked,
            "watermark": {"found": self.watermark, "z": None if m is None else round(m.z, 2),
                          "z_min": watermark.Z_MIN,
                          "bits_agree": None if m is None else m.bits, "bits": watermark.BITS,
                          "period_px": None if m is None else [round(p, 3) for p in m.period],
                          "offset_px": None if m is None else [round(o, 1) for o in m.offset],
                          "frames": self.frames, "mirrored": self.mirrored},
            "tag": self.tag if self.our_tag else None,
            "other_tag": None if self.our_tag else self.tag,
            "c2pa": None if c is None else {"generator": c.generator, "source_type": c.source_type,
                                            "state": c.state, "ours": self.our_manifest},
        }


def _video_tag(path: Path) -> str | None:
    try:
        with open_input(path) as c:
            meta = {k.lower(): v for k, v in c.metadata.items()}   # MKV spells them in capitals
            text = meta.get("comment") or meta.get("description") or ""
    except av.error.FFmpegError:
        return None
    return text if "synthetic" in text.lower() else None


def verify_file(path) -> Verdict:
    path = Path(path)
    if not path.exists():
        raise FacepairError(f"file not found: {path}")
    if is_image(path):
        try:
            residual = watermark.residual(read_image(path))
        except UnreadableMedia:
            raise FacepairError(f"cannot read {path} as an image") from None
        tag, frames = label.image_tag(path), 1
    else:
        residual, frames = None, 0
        try:
            for _, frame in iter_video(path, every=1):
                r = watermark.residual(frame)
                if r is not None:
                    residual = r if residual is None else residual + r
                frames += 1
                if frames >= MAX_FRAMES:
                    break
        except UnreadableMedia:
            raise FacepairError(f"cannot read {path} as an image or video") from None
        tag = _video_tag(path)
    mark, mirrored = read_mark(residual) if residual is not None else (None, False)
    return Verdict(str(path), mark, tag, credentials.read(path), frames, mirrored)


def read_mark(residual: np.ndarray) -> tuple[watermark.Reading, bool]:
    """The watermark read as made, and from the picture flipped left to right (the most common
    edit of re-posted video, which the tile does not survive): the stronger reading, and whether
    it was the flipped one. Two looks double the chance of a false find (docs/provenance.md)."""
    plain = watermark.read(residual)
    flipped = watermark.read(np.ascontiguousarray(residual[:, ::-1]))
    return (flipped, True) if flipped.z > plain.z else (plain, False)


def verify(paths) -> list[Verdict]:
    return [verify_file(p) for p in paths]
