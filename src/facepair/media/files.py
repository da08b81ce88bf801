"""Files that survive a kill at any point: atomic writes (temp file, fsync, rename) and JSON."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..errors import FacepairError


TEMP_NAME = 200                     # bytes of the target's name a temp file's name keeps
UMASK = os.umask(0o022)             # read once (the call sets it), then put back as it was
os.umask(UMASK)


def writable(path, follow_links: bool = True) -> Path:
    """Where a write to `path` lands: a user's output (`follow_links`) goes to a link's target,
    the link itself staying; a file of the tool's own (a model folder's) replaces a link rather
    than write where it leads. A device, a pipe or a socket is refused in one line (the rename of
    an atomic write would replace the device node itself: -o /dev/null run as root)."""
    path = Path(path)
    if path.is_symlink():
        if not follow_links:
            return path
        path = path.resolve()
    if path.exists() and not path.is_file() and not path.is_dir():
        raise FacepairError(f"not a regular file: {path}")
    return path


def can_write(path, folder: bool = False) -> None:
    """A user's output checked before the work that ends in it (a swap, an evaluation): a file
    can be made where it goes, in its folder or (`folder`: the output is a folder) in the output
    itself, or in the nearest folder above that exists (the rest is made). One line naming
    `path` where not (a read-only place, no permission, a file where a folder should be): the
    error came after the work, and named the hidden temporary file."""
    path = writable(path)
    if not folder and path.is_dir():
        raise FacepairError(f"{path} is a folder: give the name of a file to write")
    where = path if folder else path.parent
    while not where.exists() and where != where.parent:
        where = where.parent
    if not where.is_dir():
        raise FacepairError(f"cannot make the output folder {where}: a file of that name is there")
    try:
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".facepair-check.", suffix=".tmp")
    except OSError as e:
        raise FacepairError(f"cannot write {path}: {e.strerror or type(e).__name__}") from None
    os.close(fd)
    os.unlink(tmp)


def _set_mode(fd: int, path: Path, mode: int | None) -> None:
    """mkstemp makes 0600: give the file `mode`, else the replaced file's, else what open() would
    give. Where the system has no fchmod (Windows) or the file system refuses modes (exFAT, some
    network mounts), only an asked-for mode (a private key's) is an error."""
    if not hasattr(os, "fchmod"):
        return
    try:
        os.fchmod(fd, mode if mode is not None else
                  path.stat().st_mode & 0o7777 if path.is_file() else 0o666 & ~UMASK)
    except OSError:
        if mode is not None:
            raise


def as_list(paths) -> list:
    """Paths as a list: one path (a string or a Path) is a list of one, not of its letters (a
    string given where a list was asked for was read as "/", "x", ...)."""
    return [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)


def once(paths) -> list:
    """Each path once, where first met, by where it leads (a path named twice, spelt another way,
    or through a link): the items as given, their order kept. A link in a loop counts by its own
    name (resolving it raised, an internal error where the loop was to be named)."""
    seen, kept = set(), []
    for p in paths:
        try:
            where = Path(p).resolve()
        except (RuntimeError, OSError):
            where = Path(p).absolute()
        if where not in seen:
            seen.add(where)
            kept.append(p)
    return kept


def cut_bytes(name: str, n: int) -> str:
    """`name` cut to at most n bytes of UTF-8, whole characters: file systems count a name's
    bytes (255), not its characters (83 CJK characters are 249 bytes)."""
    return name.encode("utf-8", "surrogateescape")[:n].decode("utf-8", "ignore")


def temp_name(name: str) -> str:
    """The start of a name for a temp file beside it (a legal name of 250 bytes plus the temp's
    marks would pass the file system's 255)."""
    return cut_bytes(name, TEMP_NAME)


def fresh_file(path: Path) -> Path:
    """`path` made a new, empty file of its own, for a writer that opens it by name (an encoder):
    whatever was at the name (a link planted there, even a hard link to a file elsewhere, an
    earlier partial file) is removed, and the new file is created exclusively, following no
    link."""
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        path.unlink()
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666))
    return path


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None,
                       follow_links: bool = False, sync: bool = True) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target (see writable
    for links: followed for a user's outputs only). `mode`: the file's permissions (default:
    those of the file replaced, else what open() would give). The rename also replaces a hard
    link planted at the name rather than writing into the file it shares. `sync` False: no
    fsync (many small files that an index written after them names, such as a face set's)."""
    path = writable(path, follow_links)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{temp_name(path.name)}.", suffix=".tmp")
    except OSError as e:        # named as the user named it, not as the hidden temporary file
        raise OSError(e.errno, e.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            _set_mode(f.fileno(), path, mode)
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path):
    """A JSON file's content; a damaged file is a one-line user error."""
    try:
        return json.loads(Path(path).read_text())
    except (ValueError, RecursionError) as e:   # JSONDecodeError, UnicodeDecodeError, 5,000-digit ints
        raise FacepairError(f"corrupt {path}: {e}") from None


def atomic_write_json(path: Path, obj, follow_links: bool = False) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode(), follow_links=follow_links)
