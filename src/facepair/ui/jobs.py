"""Long stages (extract, train, swap, evaluate) as background jobs of the web app. Each job is the
`facepair` command itself in a child process: the same code, flags and checks as the command line,
a crash cannot take the server down, closing the browser stops nothing, and Stop is SIGTERM, which
the stages already treat as "finish the step under way, save, exit 130".

A job's folder (WORKDIR/.ui/jobs/ID/) holds job.json (what ran), log.txt (its output) and, once it
has ended, end.json (its exit status and when); the status read back from them: running / done /
failed / stopped, the progress bar's percentage, and the last line the command printed (its
one-line error when it failed). The app started again lists the jobs of its earlier runs from
these folders, as they ended ("ended" where the app was closed before it could note the end)."""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import secrets
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..media.files import atomic_write_bytes, atomic_write_json
from ..stopping import STOP_WITH

PERCENT = re.compile(rb"(\d{1,3})%\|")
WARNINGS = 3                   # a job's warning lines shown with it, the last ones
WARNING_CHARS = 1000            # each cut there: train's small-face-set advice is 430 (300 cut it short)
EXIT_STOPPED = 130
KINDS = ("extract", "train", "swap", "evaluate")
END = "end.json"
# what an earlier run's job.json may give back to the page (server.py's start() writes these);
# anything else there, or a value not of its kind, is left out: the page gets no field it cannot
# show (a NaN or a lone surrogate made every /api/state a 500), nor megabytes of padding
META_TEXT = ("target", "faceset", "model", "output", "url")
META_TEXT_MAX = 300        # characters, printable
EARLIER_MAX = 100          # of the earlier runs' jobs, the newest this many are listed
JOB_ID = re.compile(r"\d{8}-\d{6}-\d{1,9}")      # Jobs.start's names


@dataclass
class Job:
    id: str
    kind: str                      # extract | train | swap | evaluate
    argv: list                     # after `facepair`
    folder: Path
    meta: dict = field(default_factory=dict)   # what the page needs back (model, output, budget)
    started: float = field(default_factory=time.time)
    proc: subprocess.Popen | None = None      # None: a job of an earlier run of the app
    ended: float | None = None
    code: int | None = None                   # an earlier run's job: its exit status, if noted
    home: tuple | None = None                 # its folder as made (device, inode): written into only
    warnings: list = field(default_factory=list)   # its log's warning lines, as read so far
    read_to: int = 0                          # how far its log was read for them

    @property
    def log(self) -> Path:
        return self.folder / "log.txt"

    def returncode(self) -> int | None:
        return self.code if self.proc is None else self.proc.poll()

    def state(self) -> str:
        code = self.returncode()
        if code is None:
            return "ended" if self.proc is None else "running"
        self.ended = self.ended or time.time()
        return "done" if code == 0 else "stopped" if code == EXIT_STOPPED else "failed"

    def note_end(self) -> None:
        """Keep how it ended beside it (end.json), for the app's next run; once. Written into
        the job's own folder, never through a link put in its place while it ran."""
        code = self.returncode()
        if self.proc is None or code is None or (self.folder / END).exists():
            return
        self.ended = self.ended or time.time()
        try:
            _write_own(self.folder, END, json.dumps({"returncode": code, "ended": self.ended}).encode(), self.home)
        except OSError:                 # its folder gone, a full disk: listed as "ended" then
            pass

    def status(self) -> dict:
        tail = _tail(self.folder, self.log.name)
        parts = [p.strip() for p in re.split(rb"[\r\n]", tail) if p.strip()]
        pct = PERCENT.findall(tail)
        state = self.state()
        # (a long line cut at its end: what it is about comes first)
        message = parts[-1].decode(errors="replace")[:300] if parts else ""
        self._read_warnings()
        code = self.returncode()
        if code is not None and code < 0 and -code != signal.SIGTERM and not message.startswith("facepair:"):
            # killed from outside (SIGKILL: out of memory?): its last line was a progress bar
            try:
                name = signal.Signals(-code).name
            except ValueError:                  # a real-time signal (SIGRTMIN + n) has no name
                name = str(-code)
            message = f"ended by signal {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
        return {**self.meta,            # what the page needs back; never in place of these:
                "id": self.id, "kind": self.kind, "state": state, "returncode": code,
                "progress": 1.0 if state == "done" else int(pct[-1]) / 100 if pct else None,
                "message": message,
                "warnings": [w for w in self.warnings if w != message],
                "seconds": round((self.ended or time.time()) - self.started, 1)}

    def _read_warnings(self, most: int = 1 << 16) -> None:
        """The log's "facepair: warning:" lines (said at a job's start, then scrolled away by its
        progress bar: a training on few faces, a face set changed), read on from where the last
        look stopped, `most` bytes a look; the last WARNINGS kept, each cut at WARNING_CHARS."""
        try:
            with os.fdopen(_open_own(self.folder, self.log.name), "rb") as f:
                f.seek(self.read_to)
                chunk = f.read(most)
        except OSError:
            return
        end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) + 1    # whole lines: the rest next time
        whole = chunk if not end and len(chunk) == most else chunk[:end]   # (a line past `most`: not one)
        self.read_to += len(whole)
        for line in re.split(rb"[\r\n]", whole):
            if line.startswith(b"facepair: warning:"):
                text = line.decode(errors="replace").strip()[:WARNING_CHARS]
                if text not in self.warnings:
                    self.warnings = (self.warnings + [text])[-WARNINGS:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)


class Jobs:
    """The app's jobs, newest last. Only one job at a time writes to one target (a model folder,
    a face set, an output file): a second start there is refused."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.jobs: dict[str, Job] = {j.id: j for j in _earlier(self.folder)}
        self._ids = itertools.count(len(self.jobs) + 1)

    def busy(self, target: str) -> Job | None:
        return next((j for j in self.jobs.values()
                     if j.meta.get("target") == target and j.state() == "running"), None)

    def start(self, kind: str, argv: list[str], cwd: Path, **meta) -> Job:
        jid = f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._ids)}"
        folder = self.folder / jid                       # "{job}" in argv: this folder
        job = Job(jid, kind, [str(folder / a[6:]) if a.startswith("{job}/") else str(a) for a in map(str, argv)], folder, meta)
        job.folder.mkdir(parents=True)          # new: never a folder (or link) planted before
        if job.folder.resolve().parent != self.folder:      # (the work folder's own path: resolved)
            raise OSError(f"job folder {jid} leads out of the work folder")
        atomic_write_json(job.folder / "job.json", {"id": jid, "kind": kind, "argv": job.argv,
                                                    "started": job.started, **meta})
        st = os.stat(job.folder, follow_symlinks=False)
        job.home = (st.st_dev, st.st_ino)
        # STOP_WITH: the job stops (and saves) if the app is closed hard, where stop_all never ran
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{STOP_WITH: str(os.getpid())})
        # a new file that follows no link (one put there since the folder was made: not written through)
        fd = os.open(job.log, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        with os.fdopen(fd, "wb") as log:      # the child keeps its own handle
            # a list of arguments, never a shell: nothing from the page reaches a shell
            job.proc = subprocess.Popen([sys.executable, "-m", "facepair", kind, *job.argv],
                                        cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env)
        self.jobs[jid] = job
        # its end as it happens (read at the next look, a job ended while nobody watched showed
        # the hours since as its length)
        threading.Thread(target=_note_end, args=(job,), daemon=True).start()
        return job

    def get(self, jid: str) -> Job | None:
        return self.jobs.get(jid)

    def all(self) -> list[dict]:
        return [j.status() for j in self.jobs.values()]

    def stop_all(self, wait: float = 60.0) -> None:
        """Server shutdown: ask every running job to save and stop, and wait for them."""
        running = [j for j in self.jobs.values() if j.state() == "running"]
        for j in running:
            j.stop()
        deadline = time.time() + wait
        for j in running:
            try:
                j.proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
            j.note_end()            # now: the thread that notes it may not outlive the server


def _note_end(job: Job) -> None:
    job.proc.wait()
    job.ended = job.ended or time.time()
    job.note_end()


def _earlier(folder: Path) -> list[Job]:
    """The jobs of the app's earlier runs in `folder`, oldest first (the newest EARLIER_MAX):
    each job folder (not a link) whose job.json reads as one, its fields as _meta keeps them;
    anything else there (what the app did not write: a copied or unpacked work folder) is passed
    over, never in the way of the server's start."""
    found = []
    try:
        subs = sorted(folder.iterdir())
    except OSError:                     # no jobs yet
        return []
    for sub in subs:
        try:
            if not JOB_ID.fullmatch(sub.name) or sub.is_symlink() or not sub.is_dir() \
                    or sub.resolve().parent != folder.resolve():
                continue
            info = read_own_json(sub / "job.json")
            end = read_own_json(sub / END) if (sub / END).exists() else {}
            # its end as noted, else its output's last write (its length did not grow for ever)
            ended = _time(end["ended"]) if "ended" in end else _time(_stat_own(sub, "log.txt").st_mtime)
            code = end.get("returncode")
            if code is not None and (type(code) is not int or not -255 <= code <= 255):
                continue
            if not (isinstance(info["argv"], list) and all(isinstance(a, str) for a in info["argv"])):
                continue
            job = Job(sub.name, info["kind"], list(info["argv"]), sub, _meta(info), _time(info["started"]),
                      ended=ended, code=code)
        except (OSError, ValueError, KeyError, TypeError, OverflowError):     # not a job's folder
            continue
        if job.id == info.get("id") and job.kind in KINDS:
            found.append(job)
    return sorted(found, key=lambda j: j.started)[-EARLIER_MAX:]


def _time(value) -> float:
    """A time read back from a job's files: seconds since 1970, a number the page can show."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e11:
        raise ValueError(f"not a time: {str(value)[:20]}")
    return float(value)


def _meta(info: dict) -> dict:
    """What of an earlier job's job.json goes back to the page: META_TEXT's fields as short
    text, and a training's budget (steps, minutes) as numbers."""
    def number(v):                       # a count or minutes: a plain number of sane size
        return v if type(v) is int and abs(v) < 10**12 or type(v) is float and abs(v) < 1e12 else None
    meta = {k: info[k] for k in META_TEXT
            if isinstance(info.get(k), str) and len(info[k]) <= META_TEXT_MAX and info[k].isprintable()}
    budget = info.get("budget")
    if isinstance(budget, dict):
        meta["budget"] = {k: number(budget.get(k)) for k in ("steps", "minutes")}
    return meta


def _open_own(folder: Path, name: str) -> int:
    """A file the app wrote itself in one of its folders, opened for reading: the folder and the
    file reached through no link, a plain file with one name (no pipe, which would hang the
    request, nor a hard link to a file elsewhere); else OSError."""
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    flags = os.O_RDONLY | nofollow | getattr(os, "O_NONBLOCK", 0)
    if os.open in os.supports_dir_fd:
        dfd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | nofollow)
        try:
            fd = os.open(name, flags, dir_fd=dfd)
        finally:
            os.close(dfd)
    else:                                   # (Windows: no dir_fd; the folder checked first)
        if Path(folder).is_symlink():
            raise OSError(f"{folder} is a link")
        fd = os.open(Path(folder) / name, flags)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        raise OSError(f"{Path(folder) / name} is not a file of the app's own")
    return fd


def _stat_own(folder: Path, name: str) -> os.stat_result:
    fd = _open_own(folder, name)
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def _write_own(folder: Path, name: str, data: bytes, home: tuple | None = None) -> None:
    """`data` as `name` in the app's own folder, whole or not at all (a temporary file renamed),
    written through no link: a job folder replaced by a link while its job ran is not followed,
    and where `home` (device, inode) is given, only that very folder is written into (not one
    reached through a link put in place of a folder above it)."""
    if os.open not in os.supports_dir_fd:           # (Windows: the folder checked first)
        if Path(folder).is_symlink():
            raise OSError(f"{folder} is a link")
        atomic_write_bytes(Path(folder) / name, data)
        return
    dfd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
    tmp = f".{name}.{secrets.token_hex(6)}.tmp"
    try:
        st = os.fstat(dfd)
        if home is not None and (st.st_dev, st.st_ino) != tuple(home):
            raise OSError(f"{folder} is no longer the job's own folder")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644, dir_fd=dfd)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise
    finally:
        os.close(dfd)


def read_own_json(path: Path) -> dict:
    """A JSON object the app wrote itself (see _open_own; else OSError), with nothing in it the
    page cannot be sent (NaN, infinities, lone surrogates) and nested as the app nests (else
    ValueError: a 200,000-deep list stopped the server's start with a RecursionError)."""
    with os.fdopen(_open_own(path.parent, path.name), "rb") as f:
        data = f.read(1 << 20)
    try:
        found = json.loads(data)
        # what the page could not be sent: NaN, Infinity, 1e400 (read as infinity) are a
        # ValueError here, lone surrogates a UnicodeError
        json.dumps(found, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (RecursionError, UnicodeError, OverflowError) as e:
        raise ValueError(f"{path}: {type(e).__name__}") from None
    if not isinstance(found, dict):
        raise ValueError(f"{path} holds no JSON object")
    return found


def _tail(folder: Path, name: str, size: int = 8192) -> bytes:
    """The end of a job's log; one that is not the app's own file (a link, a hard link, a pipe
    planted in an earlier run's folder) reads as empty."""
    try:
        with os.fdopen(_open_own(folder, name), "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read(size)                 # (a file growing meanwhile: still `size` at most)
    except OSError:
        return b""
