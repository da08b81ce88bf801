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

import itertools
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..media.files import atomic_write_json

PERCENT = re.compile(rb"(\d{1,3})%\|")
EXIT_STOPPED = 130
KINDS = ("extract", "train", "swap", "evaluate")
END = "end.json"


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
        """Keep how it ended beside it (end.json), for the app's next run; once."""
        code = self.returncode()
        if self.proc is None or code is None or (self.folder / END).exists():
            return
        self.ended = self.ended or time.time()
        try:
            atomic_write_json(self.folder / END, {"returncode": code, "ended": self.ended})
        except OSError:                 # its folder gone, a full disk: listed as "ended" then
            pass

    def status(self) -> dict:
        tail = _tail(self.log)
        parts = [p.strip() for p in re.split(rb"[\r\n]", tail) if p.strip()]
        pct = PERCENT.findall(tail)
        state = self.state()
        message = parts[-1].decode(errors="replace")[-300:] if parts else ""
        code = self.returncode()
        if code is not None and code < 0 and -code != signal.SIGTERM and not message.startswith("facepair:"):
            # killed from outside (SIGKILL: out of memory?): its last line was a progress bar
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            message = f"ended by signal {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
        return {**self.meta,            # what the page needs back; never in place of these:
                "id": self.id, "kind": self.kind, "state": state, "returncode": code,
                "progress": 1.0 if state == "done" else int(pct[-1]) / 100 if pct else None,
                "message": message,
                "seconds": round((self.ended or time.time()) - self.started, 1)}

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
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(job.log, "wb") as log:      # the child keeps its own handle
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
    """The jobs of the app's earlier runs in `folder`, oldest first: each job folder (not a
    link) whose job.json reads as one; anything else there is passed over."""
    found = []
    try:
        subs = sorted(folder.iterdir())
    except OSError:                     # no jobs yet
        return []
    for sub in subs:
        try:
            if sub.is_symlink() or not sub.is_dir() or sub.resolve().parent != folder.resolve():
                continue
            info = read_own_json(sub / "job.json")
            end = read_own_json(sub / END) if (sub / END).exists() else {}
            meta = {k: v for k, v in info.items() if k not in ("id", "kind", "argv", "started")}
            # its end as noted, else its output's last write (its length did not grow for ever)
            ended = float(end["ended"]) if "ended" in end else (sub / "log.txt").stat().st_mtime
            job = Job(sub.name, info["kind"], list(info["argv"]), sub, meta, float(info["started"]),
                      ended=ended, code=int(end["returncode"]) if "returncode" in end else None)
        except (OSError, ValueError, KeyError, TypeError):     # not a job's folder
            continue
        if job.id == info.get("id") and job.kind in KINDS:
            found.append(job)
    return sorted(found, key=lambda j: j.started)


def read_own_json(path: Path) -> dict:
    """A JSON file the app wrote itself: a plain file with one name, reached through no link
    (else OSError)."""
    if path.parent.is_symlink():
        raise OSError(f"{path.parent} is a link")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            raise OSError(f"{path} is not a file of the app's own")
        found = json.loads(f.read(1 << 20))
    if not isinstance(found, dict):
        raise ValueError(f"{path} holds no JSON object")
    return found


def _tail(path: Path, size: int = 8192) -> bytes:
    """The end of a job's log; a link there (planted in an earlier run's folder) reads as empty."""
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read()
    except OSError:
        return b""
