"""`facepair verify`: is this file one of ours? Reads the watermark (the public mark: made by
facepair; the installation mark: made by this installation, or by the one whose key file is
given), the metadata tag and the C2PA manifest back."""
from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from ..errors import FacepairError, TooLarge, UnreadableMedia, shown
from ..media.files import once
from ..media.image import expand_inputs, is_image, open_picture, read_image
from ..media.video import is_video_name, iter_video, open_input
from . import credentials, label, watermark

MAX_FRAMES = 90          # frames of a video read (their residuals add up)
# frames with nothing to carry the mark (black, a plain title card: a fade-in's first seconds)
# are passed over, not counted among the 90 (a swap opening on 3 s of black read z 0), up to a
# minute of them at 30 frames/s
FLAT_STD, MAX_SCAN = 1.0, 1800


@dataclass
class KeyCheck:
    """The installation mark, looked for with one installation's key."""
    key_id: str | None                # the key's public name (None: this installation has no key yet)
    own: bool                         # this installation's key (False: a key file given to --key)
    reading: watermark.KeyReading | None = None    # None: not read (no key, or too small)

    @property
    def found(self) -> bool:
        return self.reading is not None and self.reading.found

    @property
    def told(self) -> bool:
        """Whether the reading says yes or no: found, or absent where a mark of the predicted
        strength would have been found (expected >= Z_KEY) and the reading is below KEY_RATIO of
        it. A weak picture (most photos, after a rescale) tells neither, where it read "not by"
        about this installation's own outputs. No key: this installation made nothing."""
        r = self.reading
        return self.key_id is None or r is not None and (
            r.found or r.expected >= watermark.Z_KEY and r.z < watermark.KEY_RATIO * r.expected)

    def verdict(self, marked: bool) -> str:
        """'made by', 'not by' or 'cannot tell' (a file with none of our marks: 'not by')."""
        return "made by" if self.found else "not by" if self.told or not marked else "cannot tell"

    @property
    def whose(self) -> str:
        return "this installation" if self.own else f"the installation of key {self.key_id}"

    def __str__(self):
        r = self.reading
        text = f"installation mark {'FOUND' if self.found else 'not found'}"
        if self.key_id is None:
            return text + " (this installation has no watermark key yet: it has made nothing)"
        if r is None:
            return text + f" (too small to read; key {self.key_id})"
        return text + (f" (z {r.z:.1f}, found at {watermark.Z_KEY:g} and at {watermark.KEY_RATIO:g}x "
                       f"the {r.expected:.1f} the public mark predicts; key {self.key_id})")

    def to_json(self) -> dict:
        r = self.reading
        return {"found": self.found, "made_by": self.whose, "own_key": self.own, "key_id": self.key_id,
                "z": None if r is None else round(r.z, 2), "z_min": watermark.Z_KEY,
                "z_expected": None if r is None else round(r.expected, 2), "ratio_min": watermark.KEY_RATIO}


@dataclass
class Verdict:
    path: str
    mark: watermark.Reading | None    # what the watermark reader found (None: picture too small)
    tag: str | None                   # a tag calling the media synthetic, whoever wrote it
    manifest: credentials.Credentials | None = None
    frames: int = 1                   # pictures read for the watermark
    mirrored: bool = False            # the mark was read from the picture flipped left to right
    installation: KeyCheck | None = None   # the installation mark (None: not looked for)

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
    def by_installation(self) -> bool:
        """The installation mark of the key checked was found."""
        return self.installation is not None and self.installation.found

    @property
    def marked(self) -> bool:
        """Ours only by our own marks: the watermark (public or installation mark), our tag, or
        our valid manifest."""
        return self.watermark or self.by_installation or self.our_tag or self.our_manifest

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
        head = 'SYNTHETIC (facepair)' if self.marked else 'no facepair marks'
        if self.installation is not None:
            i = self.installation
            said = i.verdict(self.marked)
            head += (f": {'made by facepair, ' if self.marked else ''}"
                     + (f"cannot tell whether by {i.whose} (its mark too weak to read here)"
                        if said == "cannot tell" else f"{said} {i.whose}"))
            wm += f"; {i}"
        return f"{shown(self.path)}: {head}: {wm}; {tag}; {c2pa}"

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
            "installation": None if self.installation is None else dict(
                self.installation.to_json(), verdict=self.installation.verdict(self.marked)),
        }


def _video_tag(path: Path) -> str | None:
    try:
        with open_input(path) as c:
            meta = {k.lower(): v for k, v in c.metadata.items()}   # MKV spells them in capitals
            text = meta.get("comment") or meta.get("description") or ""
    except av.error.FFmpegError:
        return None
    return text if "synthetic" in text.lower() else None


_SAID: set = set()          # warnings given about this installation's key


def key_check(key_file=None) -> tuple[bytes | None, KeyCheck | None]:
    """The key to look for the installation mark with: `key_file`'s (verify --key), else this
    installation's (none yet: nothing to find). A bad key file is a one-line user error."""
    if key_file is not None:
        key = credentials.read_watermark_key(key_file)
        return key, KeyCheck(watermark.key_id(key), own=False)
    try:
        key = credentials.watermark_key(create=False)
    except FacepairError as e:       # the public mark, the tag and the manifest need no key
        if str(e) not in _SAID:          # once, however many files (a filter reset shows it again)
            _SAID.add(str(e))
            warnings.warn(f"{e}: the installation mark is not looked for")
        return None, None
    return key, KeyCheck(None if key is None else watermark.key_id(key), own=True)


def the_files(paths) -> list[Path]:
    """What `verify` reads of `paths`: files as named, and a folder's pictures and videos (by
    their names, in its subfolders too: `swap FOLDER -o OUT` writes a folder); a folder with none
    stays, for verify_file to say so."""
    files = []
    for p in map(Path, paths):
        found = expand_inputs([p], keep=lambda f: is_image(f) or is_video_name(f)) if p.is_dir() else []
        files += found or [p]
    return once(files)                  # a folder given twice, or with one of its files named


def verify_file(path, key_file=None) -> Verdict:
    """What marks the file at `path` carries; the installation mark is looked for with the key in
    `key_file`, else with this installation's."""
    key, check = key_check(key_file)
    residual, frames, tag, kind = read_file(path)
    mark, mirrored = read_mark(residual) if residual is not None else (None, False)
    if key is not None and mark is not None:
        check.reading = read_key(residual, mark, mirrored, key)
    return Verdict(str(path), mark, tag, credentials.read(path, kind), frames, mirrored, check)


def read_file(path) -> tuple[np.ndarray | None, int, str | None, str | None]:
    """What the watermark reader looks at (the picture's residual, or up to MAX_FRAMES frames'
    summed, flat ones passed over; None if too small), how many pictures were read, the file's
    tag, and the C2PA media type of what the file holds (None: one that takes no manifest).
    The file is read by what it holds, its name only choosing what to try first: a
    JPEG saved as .jfif (Chrome on Windows), renamed .mp4 or without an extension was "cannot
    read", and a video without an extension showed no manifest."""
    path = Path(path)
    if not path.exists():
        raise FacepairError(f"a link that leads nowhere (or in a loop): {path}" if path.is_symlink()
                            else f"file not found: {path}")
    if path.is_dir():                       # (the_files() gives a folder's pictures and videos)
        raise FacepairError(f"no picture or video in the folder {path}")
    if not path.is_file():                  # a pipe or a device would be read forever
        raise FacepairError(f"not a regular file: {path}")
    for reader in (_picture, _video) if is_image(path) else (_video, _picture):
        try:
            return reader(path)
        except TooLarge as e:
            raise FacepairError(str(e)) from None
        except UnreadableMedia:
            continue
    if not os.access(path, os.R_OK):
        raise FacepairError(f"cannot read {path}: permission denied")
    raise FacepairError(f"cannot read {path} as an image or video")


PICTURE_TYPES = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png",
                 "WEBP": "image/webp", "TIFF": "image/tiff"}       # Pillow's names: C2PA's


def _picture(path: Path):
    residual = watermark.residual(read_image(path))
    try:
        with open_picture(path) as img:
            kind = PICTURE_TYPES.get(img.format)
    except Exception:  # noqa: BLE001 - OpenCV read what Pillow does not: no manifest to read
        kind = None
    return residual, 1, label.image_tag(path), kind


MAX_STREAMS = 4          # video streams of one file looked at for the mark


def _video(path: Path):
    """The residual of the video stream that reads the strongest mark: each of its video
    streams is looked at (up to MAX_STREAMS), so that a still picture or another stream muxed
    beside a swap's own does not hide its mark (the first stream was read alone). A file of one
    stream: read once."""
    streams = 1
    with contextlib.suppress(av.error.FFmpegError, UnicodeDecodeError), open_input(path) as c:
        streams = max(1, min(len(c.streams.video), MAX_STREAMS))
    if streams == 1:
        return _stream(path, None)
    found = [_stream(path, k) for k in range(streams)]
    marked = [f for f in found if f[0] is not None] or found
    return max(marked, key=lambda f: -1.0 if f[0] is None else read_mark(f[0])[0].z)


def _stream(path: Path, index: int | None):
    residual, frames, read, frame = None, 0, 0, None
    for _, frame in iter_video(path, every=1, stream=index):
        frames += 1
        if _textured(frame):
            r = watermark.residual(frame)
            if r is not None and (residual is None or r.shape == residual.shape):
                # (a stream whose frame size changes: the frames of its first size are summed;
                # adding another size was an internal error)
                residual = r if residual is None else residual + r
                read += 1
        if read >= MAX_FRAMES or frames >= MAX_SCAN:
            break
    if read == 0 and frame is not None:       # only flat frames: read as they are
        residual = watermark.residual(frame)
    if frame is None:
        raise UnreadableMedia(f"no frame in {path}")
    return residual, frames, _video_tag(path), _bmff(path)


def _bmff(path: Path) -> str | None:
    """C2PA's media type of an MP4/MOV (ISO base media) file, by its demuxer; else None."""
    with contextlib.suppress(av.error.FFmpegError), open_input(path) as c:
        if "mp4" in c.format.name.split(","):
            return "video/quicktime" if path.suffix.lower() == ".mov" else "video/mp4"
    return None


def public_mark(path) -> watermark.Reading | None:
    """The public mark as `verify` reads it from a file (None: too small to hold one)."""
    residual = read_file(path)[0]
    return None if residual is None else read_mark(residual)[0]


def _textured(frame: np.ndarray) -> bool:
    """Whether a frame has anything for the mark to sit on: a colour channel that varies by
    FLAT_STD or more (subsampled). A black frame, or a title card of one colour, does not."""
    return frame[::8, ::8].reshape(-1, frame.shape[-1]).std(0).max() >= FLAT_STD


def read_mark(residual: np.ndarray) -> tuple[watermark.Reading, bool]:
    """The watermark read as made, and from the picture flipped left to right (the most common
    edit of re-posted video, which the tile does not survive): the stronger reading, and whether
    it was the flipped one. Two looks double the chance of a false find (docs/provenance.md)."""
    plain = watermark.read(residual)
    flipped = watermark.read(np.ascontiguousarray(residual[:, ::-1]))
    return (flipped, True) if flipped.z > plain.z else (plain, False)


def read_key(residual: np.ndarray, mark: watermark.Reading, mirrored: bool, key: bytes) -> watermark.KeyReading:
    """The installation mark of `key`, on the public mark's grid and in its orientation."""
    return watermark.read_key(np.ascontiguousarray(residual[:, ::-1]) if mirrored else residual, mark, key)


def verify(paths, key_file=None) -> list[Verdict]:
    """Each file's verdict (a folder: each of its pictures and videos)."""
    return [verify_file(p, key_file) for p in the_files(paths)]
