"""`facepair verify`: is this file one of ours? Reads the watermark, the metadata tag and the
C2PA manifest back."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from ..errors import FacepairError
from ..media import UnreadableMedia, is_image, iter_video, read_image
from . import credentials, label, watermark

MAX_FRAMES = 90          # frames of a video read (correlations add up over them)


@dataclass
class Verdict:
    path: str
    watermark: bool
    agreement: float | None       # share of payload bits read back (None: nothing readable)
    tag: str | None
    manifest: credentials.Credentials | None = None
    frames: int = 1

    @property
    def marked(self) -> bool:
        return self.watermark or self.tag is not None or \
            (self.manifest is not None and self.manifest.generator == "facepair")

    def __str__(self):
        wm = f"watermark {'FOUND' if self.watermark else 'not found'}" + \
            (f" (bits agree {round(self.agreement * watermark.BITS)}/{watermark.BITS})"
             if self.agreement is not None else "")
        tag = "tag FOUND" if self.tag else "no tag"
        m = self.manifest
        c2pa = (f"C2PA manifest FOUND ({m.generator or 'unknown generator'}, "
                f"{m.source_type.rsplit('/', 1)[-1] or 'no source type'}, {m.state})" if m
                else "no C2PA manifest")
        return (f"{self.path}: {'SYNTHETIC (facepair)' if self.marked else 'no facepair marks'}: "
                f"{wm}; {tag}; {c2pa}")


def _video_tag(path: Path) -> str | None:
    try:
        with av.open(str(path)) as c:
            meta = {k.lower(): v for k, v in c.metadata.items()}   # MKV spells them in capitals
            text = meta.get("comment") or meta.get("description") or ""
    except av.error.FFmpegError:
        return None
    return text if "synthetic" in text else None


def verify_file(path) -> Verdict:
    path = Path(path)
    if not path.exists():
        raise FacepairError(f"file not found: {path}")
    if is_image(path):
        try:
            corr = watermark.correlations(read_image(path))
        except UnreadableMedia:
            raise FacepairError(f"cannot read {path} as an image") from None
        tag, frames = label.image_tag(path), 1
    else:
        corr, frames = None, 0
        try:
            for _, frame in iter_video(path, every=1):
                c = watermark.correlations(frame)
                if c is not None:
                    corr = c if corr is None else corr + c
                frames += 1
                if frames >= MAX_FRAMES:
                    break
        except UnreadableMedia:
            raise FacepairError(f"cannot read {path} as an image or video") from None
        tag = _video_tag(path)
    agree = watermark.agreement(corr) if corr is not None else None
    found = agree is not None and agree >= watermark.MIN_AGREEMENT
    return Verdict(str(path), found, agree, tag, credentials.read(path), frames)


def verify(paths) -> list[Verdict]:
    return [verify_file(p) for p in paths]
