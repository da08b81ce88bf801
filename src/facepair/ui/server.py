"""`facepair ui`: the local web app. FastAPI serves one static page (ui/static/) and a small JSON
API over the work folder. Every stage is the Python API of facepair.api: quick calls (a face set's
gallery, removing faces, one preview frame, verify) run in the server; long ones (extract, train,
swap, evaluate) are jobs running the `facepair` command (jobs.py).

Safety of a local server: guard.py decides which requests reach a route (its own host names only,
nothing from another site, a per-server token on every request, printed with the address). Here: every path the page names is
resolved (links followed) and must stay inside the work folder; names match in full; numbers are
finite; uploads go through a temporary file that follows no link and never overwrite; the work
folder's files are served so that none is active content (only images, videos and the app's own
reports inline; reports and any HTML under a CSP sandbox; everything else as a download); errors
are one line without absolute paths. No shell and no code from the page: each action is a fixed
command whose options are checked against their choices. Swaps need the usage policy acknowledged
once; no option turns the labels off (there is none to send).

Work folder layout: uploads/ (footage added from the page), faces/NAME/ (face sets), models/NAME/,
swaps/ (outputs), reports/MODEL/ (evaluate reports), .ui/ (jobs, previews, the acknowledgement)."""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import re
import secrets
import socket
import threading
import time
import traceback
import unicodedata
import uuid
import warnings
from pathlib import Path
from urllib.parse import quote

from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__, api
from ..errors import FacepairError
from ..faces.faceset import present
from ..faces.options import DEFAULT_SIZE, DETECTORS, MAX_SIZE, MIN_SIZE
from ..model.presets import DIRECTIONS
from ..media.files import atomic_write_json, cut_bytes
from ..media.image import IMAGE_EXTS
from ..media.video import VIDEO_EXTS
from ..swap.options import BLENDS, COLORS, MASKS, MAX_SECONDS, OCCLUSIONS, SwapOptions
from . import DEFAULT_UPLOAD_MB, DEFAULT_UPLOADS_TOTAL_MB
from .guard import LINGER_S, Guard, host_name
from .jobs import Jobs, read_own_json

STATIC = Path(__file__).with_name("static")
MEDIA_EXTS = VIDEO_EXTS | IMAGE_EXTS     # what the page lists, uploads and hands to the stages
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")          # matched in full (no newline)
INLINE = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
          ".bmp": "image/bmp", ".gif": "image/gif", ".mp4": "video/mp4", ".m4v": "video/mp4",
          ".mov": "video/quicktime", ".webm": "video/webm", ".mkv": "video/x-matroska"}
# a report: no script runs (a sandbox without allow-scripts; it keeps its origin so that its own
# pictures load), only its own pictures and inline style, and only the app may frame it
REPORT_CSP = ("sandbox allow-same-origin; default-src 'none'; img-src 'self'; "
              "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
DOWNLOAD_CSP = "sandbox; default-src 'none'"
UPLOAD_NAME_BYTES = 100     # of a name's stem, in UTF-8 (a file system's limit: 255 bytes)
LOOPBACK = ("127.0.0.1", "localhost", "::1")
POLICY_VERSION = 1
POLICY = ("Use facepair only with the consent of every person whose face you use or replace. "
          "Do not use it to deceive, harass, impersonate or defame anyone, or for sexual content. "
          "Everything facepair makes is labelled as synthetic (an invisible watermark, a metadata "
          "tag and, where the format allows, a signed C2PA manifest); the labels cannot be "
          "switched off.")
CHOICES = {"direction": tuple(DIRECTIONS), "mask": MASKS, "color": COLORS, "blend": BLENDS,
           "occlusion": OCCLUSIONS,
           "detector": DETECTORS}                  # the command line's own lists
PREVIEWS_KEPT = 20
LOG_POINTS = 400             # most points of a loss curve sent to the page


class Workdir:
    """Paths the page names, always relative to the work folder and checked, after following
    links, to stay inside it."""

    OWN = ("uploads", "faces", "models", "swaps", "reports", ".ui/jobs", ".ui/previews", ".ui/incoming")

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        for sub in self.OWN:
            (self.root / sub).mkdir(parents=True, exist_ok=True)
            if not self.inside((self.root / sub).resolve()):
                raise FacepairError(f"{self.root / sub} is a link out of the work folder: remove it")

    def own(self, sub: str) -> Path:
        """One of the app's own folders (OWN), checked at each use: still a folder of its own,
        not a link made since the server started (else 403)."""
        p = self.root / sub
        if p.is_symlink() or not p.is_dir() or p.resolve() != p:
            raise HTTPException(403, f"{sub} is no longer the work folder's own folder (a link?): "
                                "restart the app after removing it")
        return p

    def inside(self, p: Path) -> bool:
        return p == self.root or p.is_relative_to(self.root)

    def resolved(self, p: Path) -> Path | None:
        """`p` with its links followed, where that stays in the work folder (None: it leads
        out, or into a loop of links)."""
        try:
            r = Path(p).resolve()
        except (OSError, RuntimeError):
            return None
        return r if self.inside(r) else None

    def path(self, rel: str, must_exist: bool = True) -> Path:
        if not isinstance(rel, str) or not rel or "\0" in rel:
            raise HTTPException(400, "no path given")
        try:
            p = (self.root / rel).resolve()
            if not self.inside(p):
                raise HTTPException(403, f"outside the work folder: {_short(rel)}")
            if must_exist and not p.exists():
                raise HTTPException(404, f"not found in the work folder: {_short(rel)}")
        except (OSError, RuntimeError, ValueError):   # a name too long, a loop of links (3.11: RuntimeError)
            raise HTTPException(400, f"not a usable path: {_short(rel)}") from None
        return p

    def sealed(self, p: Path, what: str, links: bool = True) -> Path:
        """`p` (a file or folder of the work folder, its own links followed), refused (403) where
        anything inside it is a link that leads out of the work folder or into a loop: a stage
        given a folder reads, writes or deletes what is in it, links followed (a face set whose
        faces/ is a link, a model's previews, a folder of pictures unpacked from an archive).
        Also refused: a pipe, socket or device inside (reading one would hang the request), and
        with `links` False any link at all (a folder a stage writes into by name)."""
        def refused(entry, why: str) -> HTTPException:
            return HTTPException(403, f"{what} {why}: {_short(Path(entry.path).relative_to(self.root).as_posix())}")

        seen, todo = set(), [Path(p)]
        while todo:
            folder = todo.pop()
            if folder in seen or not folder.is_dir():
                continue
            seen.add(folder)
            try:
                entries = list(os.scandir(folder))
            except OSError:                # a folder that cannot be listed may hide a link
                raise HTTPException(403, f"{what} holds a folder that cannot be read: "
                                    f"{_short(folder.relative_to(self.root).as_posix())}") from None
            for e in entries:
                if e.is_symlink():
                    target = self.resolved(Path(e.path))
                    if not links:
                        raise refused(e, "holds a link, which a stage would write through")
                    if target is None:
                        raise refused(e, "holds a link that leads outside the work folder")
                    todo.append(target)            # a link inside: what it holds is checked too
                    if not target.is_dir() and not target.is_file():
                        raise refused(e, "holds a link to something that is not a file")
                elif e.is_dir(follow_symlinks=False):
                    todo.append(Path(e.path))
                elif not e.is_file(follow_symlinks=False):
                    raise refused(e, "holds something that is not a file")
        return p

    def media(self, rel: str, folders: bool = False) -> Path:
        """A video or picture (or, with folders, a folder) in the work folder: nothing else is
        handed to the decoders (a playlist could name files elsewhere)."""
        p = self.path(rel)
        if not (p.is_file() and p.suffix.lower() in MEDIA_EXTS or folders and p.is_dir()):
            raise HTTPException(400, f"not a video or picture: {_short(rel)}")
        return p

    def rel(self, p: Path) -> str:
        """The path relative to the work folder, as a command's argument: "./" before a name that
        starts with "-", which the command would read as an option."""
        rel = Path(p).resolve().relative_to(self.root).as_posix()
        return "./" + rel if rel.startswith("-") else rel

    def url(self, p: Path) -> str:
        """Where the page fetches a file of the work folder: its path percent-encoded (a '#' or
        '?' in a name cut the link there: the picture and its download broken)."""
        return "/files/" + quote(self.rel(p))

    def named(self, kind: str, name: str) -> Path:
        """WORKDIR/kind/name, the name matched in full; a link that leads out is refused."""
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise HTTPException(400, f"bad name {_short(name)!r}: letters, digits, '.', '_', '-' (up to 64)")
        p = self.resolved(self.root / kind / name)
        if p is None:
            raise HTTPException(403, f"{kind}/{name} leads outside the work folder")
        return p

    def listing(self, limit: int = 500) -> list[dict]:
        """Videos, images, and folders holding images, outside the app's own folders (which are
        not even walked: a face set holds thousands of crops)."""
        found = []
        for folder, dirs, files in os.walk(self.root):
            top = Path(folder) == self.root
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and _utf8(d) and
                             not (top and d in ("faces", "models", "reports")))
            rel = Path(folder).relative_to(self.root)
            kinds = {f: ("video" if Path(f).suffix.lower() in VIDEO_EXTS else "image")
                     for f in sorted(files) if Path(f).suffix.lower() in MEDIA_EXTS
                     and not f.startswith(".") and _utf8(f) and self.resolved(Path(folder) / f) is not None}
            if not top and "image" in kinds.values():
                found.append({"path": rel.as_posix(), "kind": "folder"})
            found += [{"path": (rel / f).as_posix(), "kind": k} for f, k in kinds.items()]
            if len(found) >= limit:
                return found[:limit]
        return found

    def model(self, name: str) -> Path:
        folder = self.named("models", name)
        if not (folder / "state.json").exists():
            raise HTTPException(404, f"no trained model '{name}' in the work folder")
        return self.recorded(self.sealed(folder, f"models/{name}"), f"models/{name}")

    def faceset(self, name: str) -> Path:
        return self.sealed(self.named("faces", name), f"faces/{name}")

    def recorded(self, folder: Path, what: str) -> Path:
        """A model `folder`, refused (403) where its state.json names files that exist outside
        the work folder (its face sets, its held-out faces), its face sets in the work folder hold
        links out, or they name source footage outside: the stages read them (a report shows the
        faces and figures of the footage, a swap's occlusion mask is made from 32 of the faces),
        and a planted state.json could name any file on the machine. Names of files that do not
        exist (a model made on another machine) read nothing and pass; an index that cannot be
        read is left to the stage to report."""
        def index(path: Path) -> dict:
            try:
                found = _read_json(path)
            except (OSError, ValueError, RecursionError):
                return {}
            return found if isinstance(found, dict) else {}

        def paths(*groups):
            for group in groups:
                for v in (group.values() if isinstance(group, dict) else [group]):
                    for x in v if isinstance(v, list) else [v]:
                        x = x.get("path") if isinstance(x, dict) else x
                        if isinstance(x, str) and x:
                            yield x

        def check(named):
            for p in dict.fromkeys(named):
                if "\0" in p or self.resolved(self.root / p) is None and os.path.lexists(self.root / p):
                    raise HTTPException(403, f"{what} names a file outside the work folder: {_short(Path(p).name, 60)} "
                                             "(made on the command line? its face sets and their footage go in the work folder: docs/ui.md)")
                if os.path.exists(self.root / p) and not os.path.isfile(self.root / p) \
                        and not os.path.isdir(self.root / p):      # a pipe would hang the stage
                    raise HTTPException(403, f"{what} names something that is not a file: {_short(Path(p).name, 60)}")

        state = index(folder / "state.json")
        check(paths(state.get("facesets", {}), state.get("validation", {})))     # before reading them
        sources = []
        for fs in [folder, *(self.root / p for p in paths(state.get("facesets", {})))]:
            if fs != folder and (inside := self.resolved(fs)) is not None and inside.is_dir():
                self.sealed(inside, f"{what}'s face set {_short(fs.name, 40)}")
            faces = index(fs / "faceset.json").get("faces") if fs == folder or fs.is_dir() else None
            sources += [e["source"] for e in faces if isinstance(e, dict) and isinstance(e.get("source"), str)] \
                if isinstance(faces, list) else []
        check(sources)
        return folder

    def facesets(self) -> list[str]:
        return self._listed("faces", "faceset.json")

    def models(self) -> list[str]:
        return self._listed("models", "state.json")

    def _listed(self, kind: str, marker: str) -> list[str]:
        """Folders holding `marker`; one that links out of the work folder is not listed."""
        return sorted(p.name for p in (self.root / kind).iterdir()
                      if _utf8(p.name) and self.resolved(p) is not None and (p / marker).exists())

    def uploads_bytes(self) -> int:
        return sum(e.stat(follow_symlinks=False).st_size for e in os.scandir(self.own("uploads"))
                   if e.is_file(follow_symlinks=False))


def _user_error(e: Exception) -> HTTPException:
    return HTTPException(400, str(e))


def _utf8(name: str) -> bool:
    """Whether a file name is text the page can be sent: a name in another encoding (Latin-1
    from an old zip) comes from the file system as surrogates, and one in a listing made every
    /api/state a 500, the page blank."""
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _short(text, n: int = 100) -> str:
    text = str(text)
    return text if len(text) <= n else text[:n] + "..."


def allowed_hosts(host: str, extra=()) -> set[str]:
    """The names a request may be addressed to: loopback's, the listening address, and on an
    exposed server the machine's own names and addresses, plus each --allow-host."""
    names = {*LOOPBACK, host_name(host), *map(host_name, extra)}
    if host not in LOOPBACK:
        for n in {socket.gethostname(), socket.getfqdn()}:
            names.add(n.lower())
            with contextlib.suppress(OSError):
                names |= {a[4][0] for a in socket.getaddrinfo(n, None)}
    return {n for n in names if n and n not in ("0.0.0.0", "::")}


def create_app(workdir: Path, host: str = "127.0.0.1", max_upload_mb: float = DEFAULT_UPLOAD_MB,
               token: str | None = None, allow_hosts=(),
               max_uploads_total_mb: float = DEFAULT_UPLOADS_TOTAL_MB) -> FastAPI:
    wd = Workdir(workdir)
    with contextlib.suppress(HTTPException):            # (replaced by a link: refused at use)
        _clear_incoming(wd.own(".ui/incoming"))
    jobs = Jobs(wd.root / ".ui" / "jobs")
    consent_file = wd.root / ".ui" / "consent.json"
    token = token or secrets.token_urlsafe(32)
    page = (STATIC / "index.html").read_text().replace(
        '<meta name="facepair-token" content="">', f'<meta name="facepair-token" content="{token}">')
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        jobs.stop_all()                 # the server stops: running jobs save and stop too

    app = FastAPI(title="facepair", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.jobs, app.state.workdir, app.state.token = jobs, wd, token
    app.state.hosts = allowed_hosts(host, allow_hosts)
    app.add_middleware(Guard, hosts=app.state.hosts, token=token)

    def consented() -> bool:
        try:
            # the app's own file (no pipe, which would hang every request, nor a link)
            return read_own_json(consent_file).get("policy_version") == POLICY_VERSION
        except (OSError, ValueError):
            return False

    def need_consent():
        if not consented():
            raise HTTPException(403, "acknowledge the usage policy first")

    starting = threading.RLock()       # routes run in a thread pool: one start at a time

    def start(kind: str, argv: list, target: str, reads: tuple = (), **meta):
        """`reads`: what the job reads that another may be writing (a face set being extracted:
        its index grows as it goes, and a training started on it took what was there)."""
        with starting:                  # so that two quick clicks cannot both find it free
            running = jobs.busy(target)
            if running:
                raise HTTPException(409, f"{target} is in use by job {running.id} ({running.kind})")
            for what in reads:
                if running := jobs.busy(what):
                    raise HTTPException(409, f"{what} is being written by job {running.id} "
                                             f"({running.kind}); wait for it")
            wd.own(".ui/jobs")
            try:
                return jobs.start(kind, argv, wd.root, target=target, **meta).status()
            except OSError as e:
                raise HTTPException(409, f"cannot start the job: {e}") from None

    # ---- the page and the work folder's files ----------------------------------------------
    @app.get("/")
    def index():                        # the page, with this server's token in it
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @app.get("/static/{name}")
    def static(name: str):
        if "\0" in name or len(name) > 100:
            raise HTTPException(404, "no such file")
        p = (STATIC / name).resolve()
        if p.parent != STATIC.resolve() or not p.is_file():
            raise HTTPException(404, "no such file")
        return FileResponse(p, headers={"Cache-Control": "no-store"})

    @app.get("/files/{rel:path}")
    def files(rel: str):
        """Never active content: images and videos inline under their own type, the app's
        reports inline with no script allowed, anything else (HTML, SVG, JSON...) a download."""
        p = wd.path(rel)
        if not p.is_file():
            raise HTTPException(404, f"not a file: {_short(rel)}")
        headers = {"Cache-Control": "no-store"}
        ext = p.suffix.lower()
        report = ext == ".html" and p.parent.parent == wd.root / "reports"
        if report:
            headers.update({"Content-Security-Policy": REPORT_CSP, "X-Frame-Options": "SAMEORIGIN"})
            return FileResponse(p, media_type="text/html; charset=utf-8", headers=headers)
        if ext in INLINE:
            return FileResponse(p, media_type=INLINE[ext], headers=headers)
        headers["Content-Security-Policy"] = DOWNLOAD_CSP
        return FileResponse(p, media_type="application/octet-stream", filename=p.name,
                            content_disposition_type="attachment", headers=headers)

    @app.get("/api/state")
    def state():
        return {"version": __version__, "workdir": str(wd.root), "policy": POLICY,
                "consent": consented(), "presets": api.presets(), "choices": CHOICES,
                "defaults": {"color": SwapOptions.color, "occlusion": SwapOptions.occlusion},
                "max_upload_mb": max_upload_mb,
                "media_types": sorted(MEDIA_EXTS), "media": wd.listing(), "facesets": wd.facesets(),
                "models": wd.models(), "jobs": jobs.all()}

    @app.post("/api/consent")
    def consent():              # written by rename: a link planted at its name is replaced, not followed
        wd.own(".ui")
        atomic_write_json(consent_file, {"policy_version": POLICY_VERSION,
                                         "acknowledged": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        return {"consent": True}

    uploading = asyncio.Lock()          # one upload at a time: the total is checked for each

    @app.post("/api/upload")
    async def upload(request: Request, name: str):
        async with uploading:
            return await _upload(request, name)

    checking = asyncio.Lock()           # one file verified at a time: parallel requests could
                                        # each hold a file of up to the upload limit in incoming/

    @app.post("/api/verify-upload")
    async def verify_upload(request: Request, name: str):
        """Verify's own upload: read and verified, then deleted (the Verify screen kept a copy of
        every file checked, failed ones too, listed as footage, until the uploads' total was
        reached and Verify refused every file)."""
        async with checking:
            return await _upload(request, name, keep=False)

    async def _upload(request: Request, name: str, keep: bool = True):
        """The request body is the file, streamed into a temporary file the server owns (created
        new, following no link), then linked under uploads/ at a name that does not exist yet
        (never overwriting, not even through a planted link). Stopped at the per-file limit and
        at the uploads folder's total. Not `keep`: verified where it lies and deleted (the
        total does not apply)."""
        # letters and digits of any script kept (照片.jpg was __.jpg, and 写真.jpg then __-2.jpg);
        # anything else, the extension's too, becomes "_"
        name = unicodedata.normalize("NFC", Path(name).name).lstrip(".")
        stem, ext = os.path.splitext(re.sub(r"[^\w.-]", "_", name))
        base = (cut_bytes(stem, UPLOAD_NAME_BYTES) or "upload") + re.sub(r"[^A-Za-z0-9.]", "_", ext[:16])
        kind = os.path.splitext(base)[1].lower()
        if kind not in MEDIA_EXTS:     # it was kept but never listed
            await _drain(request)
            raise HTTPException(415, f"{kind or 'a name without an extension'}: not a video or picture "
                                     f"facepair reads (one of {' '.join(sorted(MEDIA_EXTS))})")
        limit = int(max_upload_mb * 2**20)
        room = int(max_uploads_total_mb * 2**20) - wd.uploads_bytes() if keep else limit
        too_big = HTTPException(413, f"file larger than the upload limit ({max_upload_mb:g} MB)")
        full = HTTPException(413, f"the work folder's uploads would pass their total limit "
                                  f"({max_uploads_total_mb:g} MB): remove files from uploads/")
        length = int(request.headers.get("content-length") or 0)
        if length > limit or length > room:
            await _drain(request)
            raise too_big if length > limit else full
        # (verify's: named with the file's extension, which picks what verify tries first)
        part = wd.own(".ui/incoming") / (uuid.uuid4().hex + ("" if keep else kind))
        size = 0
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > min(limit, room):
                        break
                    f.write(chunk)
            if size > min(limit, room):
                await _drain(request)
                raise too_big if size > limit else full
            if not keep:
                return await asyncio.to_thread(_verified, part, base)
            dest = _link_new(part, wd.own("uploads") / base)
        finally:
            part.unlink(missing_ok=True)
        return {"path": wd.rel(dest), "bytes": size}

    def _verified(path: Path, name: str) -> dict:
        try:
            v, = api.verify([path])
        except FacepairError as e:
            raise HTTPException(400, str(e).replace(str(path), name)) from None
        return dict(v.to_json(), path=name, text=str(v).replace(str(path), name))

    # ---- 1. Faces ---------------------------------------------------------------------------
    @app.post("/api/extract")
    def extract(b: dict = Body(...)):
        out = wd.faceset(b.get("name", ""))
        inputs = [wd.rel(wd.sealed(wd.media(p, folders=True), p)) for p in _list(b, "inputs")]
        if not inputs:
            raise HTTPException(400, "choose at least one video, image or folder")
        argv = [*inputs, "-o", wd.rel(out), "--every", _int(b, "every", 1, 1),
                "--size", _int(b, "size", DEFAULT_SIZE, MIN_SIZE, MAX_SIZE), "--detector", _choice(b, "detector", "hog"),
                "--min-size", _num(b, "min_size", 40, 0), "--min-blur", _num(b, "min_blur", 10, 0)]
        argv += ["--all-faces"] * bool(b.get("all_faces")) + ["--append"] * bool(b.get("append"))
        argv += ["--json", "{job}/summary.json"]        # the job's own folder (jobs.py)
        return start("extract", argv, wd.rel(out), faceset=out.name)

    @app.get("/api/faces/{name}")
    def faces(name: str):
        folder = wd.faceset(name)
        try:
            meta = api.faces(folder)
        except FacepairError as e:
            raise _user_error(e)
        return {"name": name, "size": meta["size"], "summary": _last_summary(wd, name),
                "faces": [{"file": f["file"], "url": wd.url(folder / f['file']),
                           "source": Path(f.get("source", "")).name, "frame": f.get("frame")}
                          for f in present(folder, meta["faces"])]}

    @app.post("/api/faces/{name}/remove")
    def remove_faces(name: str, b: dict = Body(...)):
        folder = wd.faceset(name)
        if jobs.busy(wd.rel(folder)):
            raise HTTPException(409, f"face set {name} is being extracted; wait for it")
        files = [f for f in _list(b, "files") if isinstance(f, str)]
        try:
            return {"removed": api.remove_faces(folder, files)}
        except FacepairError as e:
            raise _user_error(e)

    # ---- 2. Train ---------------------------------------------------------------------------
    @app.post("/api/train")
    def train(b: dict = Body(...)):
        name = b.get("model", "")
        model = wd.sealed(wd.named("models", name), f"models/{name}")     # new, or resumed
        sides = {}
        for side in ("a", "b"):
            sets = [wd.recorded(wd.faceset(n), f"faces/{n}") for n in _list(b, side)]   # its footage: read
            if not sets:
                raise HTTPException(400, f"choose at least one face set for {side.upper()}")
            sides[side] = [wd.rel(s) for s in sets]
        argv = ["--a", *sides["a"], "--b", *sides["b"], "--model", wd.rel(model),
                "--preview-every", _int(b, "preview_every", 25, 1)]
        if b.get("calibrate_faces") not in (None, ""):        # else train's: by the training's length
            argv += ["--calibrate-faces", _int(b, "calibrate_faces", 0, 0)]
        if b.get("preset"):
            if not isinstance(b["preset"], str) or b["preset"] not in {p["name"] for p in api.presets()}:
                raise HTTPException(400, f"unknown preset {_short(repr(b['preset']), 40)}")
            argv += ["--preset", b["preset"]]
        budget = {"steps": None, "minutes": None}
        if b.get("steps"):
            argv += ["--steps", _int(b, "steps", 0, 1)]
            budget["steps"] = int(argv[-1])
        else:
            argv += ["--minutes", _num(b, "minutes", 20, 0.01)]
            budget["minutes"] = float(argv[-1])
        return start("train", argv, wd.rel(model), reads=(*sides["a"], *sides["b"]), model=model.name,
                     budget=budget)

    @app.get("/api/models/{name}")
    def model(name: str):
        folder = wd.sealed(wd.named("models", name), f"models/{name}")
        job = next((j for j in reversed(list(jobs.jobs.values()))
                    if j.kind == "train" and j.meta.get("model") == name), None)
        info = {"name": name, "exists": (folder / "state.json").exists(), "log": _log(folder / "log.csv"),
                "job": job.status() if job else None, "preview": None}
        if info["exists"]:
            try:
                st = api.model_info(folder)
                info.update(preset=st.get("preset"), step=st.get("step"))
                for side in ("a", "b"):         # its face sets, by name (a resume ticks them)
                    info[side] = [Path(f["path"]).name for f in st.get("facesets", {}).get(side, [])
                                  if Path(f["path"]).parent == wd.root / "faces"]
            except FacepairError as e:
                info["error"] = str(e)
        latest = folder / "previews" / "latest.png"
        if latest.exists():
            info["preview"] = f"{wd.url(latest)}?t={latest.stat().st_mtime_ns}"
        info["eta_s"] = _time_left(info["log"], info["job"])
        report = wd.path(f"reports/{name}", must_exist=False) / "report.html"
        info["report"] = f"{wd.url(report)}?t={report.stat().st_mtime_ns}" if report.exists() else None
        return info

    @app.post("/api/jobs/{jid}/stop")
    def stop(jid: str):
        job = jobs.get(jid)
        if job is None:
            raise HTTPException(404, f"no job {jid}")
        job.stop()
        return job.status()

    @app.get("/api/jobs/{jid}")
    def job_status(jid: str):
        job = jobs.get(jid)
        if job is None:
            raise HTTPException(404, f"no job {jid}")
        return job.status()

    # ---- 3. Swap ----------------------------------------------------------------------------
    @app.post("/api/still")
    def still(b: dict = Body(...)):
        src = wd.media(b.get("input", ""))
        if src.suffix.lower() in IMAGE_EXTS:
            return {"path": wd.rel(src), "url": wd.url(src)}
        out = _preview_path(wd, "still")
        try:
            api.still(src, float(_num(b, "seconds", 0, 0)), out)
        except FacepairError as e:
            raise _user_error(e)
        _prune_previews(wd)
        return {"path": wd.rel(out), "url": wd.url(out)}

    def people(b: dict):
        """The model to swap with, or with "people" [{"ref": photo or face set, "model": name}]
        (swap --map), each checked in the work folder -> (model folder or None, [(ref, model)])."""
        entries = b.get("people") or []
        if not entries:
            return wd.model(b.get("model", "")), None
        if not isinstance(entries, list) or len(entries) > 16:
            raise HTTPException(400, "people: a list of up to 16 {ref, model}")
        maps = []
        for e in entries:
            if not isinstance(e, dict):
                raise HTTPException(400, "people: each entry is {ref, model}")
            ref = e.get("ref", "")
            ref = wd.faceset(ref[len("faces/"):]) if isinstance(ref, str) and ref.startswith("faces/") \
                else wd.media(ref)
            maps.append((ref, wd.model(e.get("model", ""))))
        return None, maps

    @app.post("/api/preview")
    def preview(b: dict = Body(...)):
        need_consent()
        src, (model, maps) = wd.media(b.get("still", "")), people(b)
        out = _preview_path(wd, "swap")
        try:
            summary = api.swap(src, model, out, **_swap_options(b), maps=maps, progress=False)
        except FacepairError as e:
            raise _user_error(e)
        _prune_previews(wd)
        return {"url": wd.url(out), "faces_swapped": summary.faces_swapped}

    @app.post("/api/swap")
    def swap(b: dict = Body(...)):
        need_consent()
        src, (model, maps) = wd.media(b.get("input", "")), people(b)
        ext = src.suffix.lower() if src.suffix.lower() in IMAGE_EXTS else ".mp4"
        opts = _swap_options(b)
        seconds = ["--duration", _num(b, "seconds", 0, 0.01, MAX_SECONDS)] if b.get("seconds") else []
        using = ["--model", wd.rel(model)] if model else \
            [f"--map={wd.rel(ref)}={wd.rel(m)}" for ref, m in maps]
        name = model.name if model else "people"
        with starting:                  # the output's name and its job, together
            # a name another swap is still writing is taken too (the second swap of a clip, with
            # other settings, was refused until the first had finished)
            out = _numbered(wd.path("swaps", must_exist=False) /
                            f"{cut_bytes(src.stem, UPLOAD_NAME_BYTES)}-{name}-{opts['direction']}{ext}",
                            taken=lambda p: jobs.busy(wd.rel(p)) is not None)
            argv = [wd.rel(src), *using, "-o", wd.rel(out),
                    *(x for k, v in opts.items() for x in (f"--{k}", v)), *seconds]
            return start("swap", argv, wd.rel(out), output=wd.rel(out), url=wd.url(out))

    # ---- 4. Verify --------------------------------------------------------------------------
    @app.post("/api/verify")
    def verify(b: dict = Body(...)):
        p = wd.media(b.get("path", ""))
        try:
            v, = api.verify([p])
        except FacepairError as e:
            raise _user_error(e)
        return dict(v.to_json(), path=wd.rel(p), text=str(v).replace(str(p), wd.rel(p)))

    # ---- 5. Report --------------------------------------------------------------------------
    @app.post("/api/evaluate")
    def evaluate(b: dict = Body(...)):
        model = wd.model(b.get("model", ""))
        faces = _int(b, "faces", 32, 2)              # checked before anything is made on disk
        out = wd.sealed(wd.path(f"reports/{model.name}", must_exist=False), f"reports/{model.name}",
                        links=False) / "report.html"
        argv = ["--model", wd.rel(model), "--max-faces", faces,
                "--html", wd.rel(out), "--json", wd.rel(out.with_suffix(".json"))]
        return start("evaluate", argv, wd.rel(out.parent), model=model.name,
                     url=wd.url(out))

    def one_line(status: int, text) -> JSONResponse:
        """An error as the page shows it: one line, paths relative to the work folder."""
        text = " ".join(str(text).replace(f"{wd.root}{os.sep}", "").replace(str(wd.root), ".").split())
        return JSONResponse({"error": _short(text, 300)}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def refused(request, exc):
        return one_line(exc.status_code, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def bad_body(request, exc):           # one line; the request is not echoed back
        where = next((".".join(map(str, e.get("loc", ()))) for e in exc.errors()), "body")
        await _drain(request)       # an upload without its name: its body is read and dropped first
        what = "the upload's name is missing" if where.startswith("query") else \
            "send a JSON object with the documented fields"
        return one_line(400, f"bad request ({where}): {what}")

    @app.exception_handler(Exception)
    async def bug(request, exc: Exception):     # a bug, not the user's: one line to the page
        traceback.print_exception(exc)          # and the whole story to the server's terminal
        return one_line(500, f"internal error ({type(exc).__name__}); the server's terminal has the details")

    return app


# ---- small helpers: checked options, a model's log, previews -----------------------------------
def _read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _list(b: dict, key: str) -> list:
    """A list field of a request (missing or empty: []); anything else is refused."""
    v = b.get(key) or []
    if not isinstance(v, list):
        raise HTTPException(400, f"{key}: send a list")
    return v


def _num(b: dict, key: str, default: float, least: float, most: float = math.inf) -> str:
    try:
        v = float(b.get(key, default) if b.get(key) not in (None, "") else default)
        if not math.isfinite(v):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise HTTPException(400, f"{key} is not a number: {_short(repr(b.get(key)), 40)}") from None
    if v < least:
        raise HTTPException(400, f"{key} must be at least {least:g} (got {v:g})")
    if v > most:
        raise HTTPException(400, f"{key} must be at most {most:g} (got {v:g})")
    return f"{v:g}"


def _int(b: dict, key: str, default: int, least: int, most: float = math.inf) -> str:
    v = float(_num(b, key, default, least, most))
    if v != int(v):
        raise HTTPException(400, f"{key} must be a whole number (got {v:g})")
    return str(int(v))


def _choice(b: dict, key: str, default: str) -> str:
    v = b.get(key) or default
    if v not in CHOICES[key]:
        raise HTTPException(400, f"bad {key} '{v}' (choose from {', '.join(CHOICES[key])})")
    return v


def _swap_options(b: dict) -> dict:
    return {k: _choice(b, k, getattr(SwapOptions, k)) for k in ("direction", "mask", "color", "blend", "occlusion")}


def _last_summary(wd: Workdir, name: str) -> dict | None:
    """The newest finished extract's summary for a face set (kept in its job folder). Only the
    jobs' own files are read: a link or a hard link planted among them (to a JSON file elsewhere
    that the page would show) is passed over."""
    for folder in sorted(wd.own(".ui/jobs").iterdir(), reverse=True):
        try:
            job = read_own_json(folder / "job.json")
            if job.get("kind") == "extract" and job.get("faceset") == name:
                return _shown_summary(read_own_json(folder / "summary.json"))
        except (OSError, ValueError):
            continue
    return None


COUNTS = ("frames_read", "faces_kept", "frames_without_face")


def _shown_summary(found: dict) -> dict | None:
    """What the faces screen shows of an extract's summary: its counts and its rejections by
    reason, each a whole number (None where the file holds anything else: it is not the app's
    own, and a null or a huge number there stopped the page's gallery)."""
    def count(v):
        return type(v) is int and 0 <= v < 10**12
    rejected = found.get("rejected")
    if not (all(count(found.get(k)) for k in COUNTS) and isinstance(rejected, dict) and len(rejected) <= 16
            and all(isinstance(k, str) and len(k) <= 40 and count(v) for k, v in rejected.items())):
        return None
    return {**{k: found[k] for k in COUNTS}, "rejected": rejected}


def _log(path: Path) -> list[dict]:
    import csv
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return []
    keep = ("step", "time_s", "loss_a", "loss_b", "val_loss_a", "val_loss_b", "images_per_s")
    every = max(1, len(rows) // LOG_POINTS)            # a long run's curve, thinned for the page
    rows = rows[::every] + ([rows[-1]] if rows and (len(rows) - 1) % every else [])
    out = []
    for r in rows:
        try:
            row = {k: float(r[k]) for k in keep if r.get(k) not in (None, "")}
        except ValueError:
            continue
        out.append({k: v for k, v in row.items() if math.isfinite(v)})   # JSON has no NaN or inf
    return out


def _time_left(log: list[dict], job: dict | None) -> float | None:
    """`job`: the training job's status (Job.status, its budget among its fields)."""
    if job is None or job["state"] != "running":
        return None
    budget = job.get("budget") or {}
    if budget.get("minutes"):               # train's bar counts the budget's seconds, from its
        done = job["progress"]              # first step (not the job's start: loading comes first)
        return None if done is None else max(0.0, (1 - done) * budget["minutes"] * 60)
    if budget.get("steps") and len(log) >= 2 and log[-1]["time_s"] > log[0]["time_s"]:
        rate = (log[-1]["step"] - log[0]["step"]) / (log[-1]["time_s"] - log[0]["time_s"])
        return max(0.0, (budget["steps"] - log[-1]["step"]) / rate)
    return None


async def _drain(request: Request, seconds: float = LINGER_S):
    """Read and drop the rest of a refused upload before answering (guard.drain's work, through
    Starlette's stream: it knows when a body already read to its end is over, where the raw
    receive would wait for the client, which waits for the answer). At most `seconds`."""
    end = time.monotonic() + seconds
    with contextlib.suppress(Exception):         # a client that hangs up: nothing left to answer
        async for _ in request.stream():
            if time.monotonic() > end:
                break


def _names(path: Path):
    """path, path-2, path-3 ...: the names an output or upload may take, in turn."""
    yield path
    yield from (path.with_name(f"{path.stem}-{n}{path.suffix}") for n in itertools.count(2))


def _link_new(src: Path, dest: Path) -> Path:
    """Give `src` the first of _names(dest) that does not exist yet (a hard link: an existing
    name, even a dangling link, is never overwritten or followed)."""
    for out in _names(dest):
        try:
            os.link(src, out, follow_symlinks=False)
            return out
        except FileExistsError:
            continue


def _numbered(path: Path, taken=lambda p: False) -> Path:
    """The first of _names(path) that does not exist and is not `taken`: an earlier output is
    never overwritten, and a name taken by a link (even one leading nowhere) is never written
    through."""
    return next(out for out in _names(path) if not os.path.lexists(out) and not taken(out))


def _preview_path(wd: Workdir, kind: str) -> Path:
    """A new name for a preview picture; the oldest beyond PREVIEWS_KEPT go once it is written
    (_prune_previews), so that a refused request deletes nothing."""
    return wd.own(".ui/previews") / f"{kind}-{uuid.uuid4().hex[:10]}.png"


def _prune_previews(wd: Workdir) -> None:
    old = sorted(((p.lstat().st_mtime, p) for p in wd.own(".ui/previews").glob("*.png")))
    for _, p in old[:max(0, len(old) - PREVIEWS_KEPT)]:
        p.unlink(missing_ok=True)


INCOMING_STALE_S = 3600       # a part-file of .ui/incoming this long untouched is no upload's now
PART_NAME = re.compile(r"[0-9a-f]{32}(\.[a-z0-9]{1,8})?")


def _clear_incoming(folder: Path) -> None:
    """Remove the part-files uploads left when the app was killed in their middle (never
    removed, and not counted in the uploads' total). Only the app's own names, plain files (no
    link followed), untouched for an hour (another app on the same work folder may be receiving
    one now)."""
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for e in entries:
            with contextlib.suppress(OSError):
                if PART_NAME.fullmatch(e.name) and e.is_file(follow_symlinks=False) and \
                        time.time() - e.stat(follow_symlinks=False).st_mtime > INCOMING_STALE_S:
                    os.unlink(e.path)


def serve(workdir: Path, host: str = "127.0.0.1", port: int = 7860,
          max_upload_mb: float = DEFAULT_UPLOAD_MB, allow_hosts=(),
          max_uploads_total_mb: float = DEFAULT_UPLOADS_TOTAL_MB) -> None:
    import uvicorn
    exposed = host not in LOOPBACK
    if exposed:
        warnings.warn(f"serving on {host}: anyone who can reach this machine on port {port} and "
                      "holds the token printed below can use the app and read the work folder "
                      "(there is no other login)")
    try:                                # a taken port: one line, before anything starts
        with socket.create_server((host, port)):
            pass
    except OSError as e:
        raise FacepairError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    app = create_app(workdir, host, max_upload_mb, allow_hosts=allow_hosts,
                     max_uploads_total_mb=max_uploads_total_mb)
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    address = f"http://{shown}:{port}/?token={app.state.token}"      # (every request needs it)
    print(f"facepair ui: {address}  (work folder {app.state.workdir.root}; Ctrl-C stops "
          "the server, and running jobs save and stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
