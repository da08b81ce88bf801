"""`facepair ui` is safe to leave running: the attacks of issue 31, run against a live server.

Over HTTP (a client that sends what a browser would send for another site's page): state-changing
requests without the token, with a wrong one, from another Origin or marked cross-site are refused
and change nothing on disk; files of the work folder are never served as active content; links
lead nowhere outside; names, numbers and errors. In headless Chromium: a page on a second origin,
served by this test, tries to act through the app (forms, fetch, images), a planted HTML file and a
planted report are opened, and markup put into a file's tag, a C2PA field, a media file name, a
face-set name, a model name and a job's target is shown on every screen: no element is created
from it and no script runs."""
from __future__ import annotations

import http.server
import io
import json
import re
import shutil
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ADDRESS, OBAMA_PHOTOS, REAGAN_CLIP
from test_ui import CHROMIUM_ARGS, Server, _browser_path

# markup that would make elements (class "pwned") and run script if written as HTML, and that
# breaks out of an attribute value too; no "/" so that it can be a file or folder name
MARKUP = '"><img src=x onerror="window.pwned=1" class=pwned><b class=pwned>x'
JPEG = (OBAMA_PHOTOS / "obama.jpg").read_bytes()


def snapshot(folder: Path) -> dict:
    """Every file and folder under `folder` with its size and modification time."""
    return {p.relative_to(folder).as_posix(): (p.is_dir() or p.stat().st_size, p.lstat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "work", "--max-upload-mb", 0.5)
    yield s
    s.stop()


def _one_line_403(status, body, why=""):
    """403 and one line: JSON for the page's requests, text for a page the browser opens."""
    assert status == 403, (status, body)
    line = body.decode()[:-1] if isinstance(body, bytes) and body.endswith(b"\n") else body["error"]
    assert why in line and "\n" not in line, body


# ---- over HTTP --------------------------------------------------------------------------------
POSTS = [("/api/consent", None), ("/api/upload?name=planted.html", b"<script>alert(1)</script>"),
         ("/api/jobs/20260101-000000-1/stop", b""), ("/api/extract", {"name": "x", "inputs": ["uploads/a.jpg"]}),
         ("/api/faces/x/remove", {"files": ["a.jpg"]}), ("/api/train", {"model": "m", "a": ["x"], "b": ["x"]}),
         ("/api/still", {"input": "uploads/a.jpg"}), ("/api/verify", {"path": "uploads/a.jpg"}),
         ("/api/verify-upload?name=a.jpg", b"\xff\xd8 not a picture"),
         ("/api/swap", {"model": "m", "input": "uploads/a.jpg"}), ("/api/evaluate", {"model": "m"})]


def _post(server, path, payload, **kw):
    if isinstance(payload, dict):
        return server.request(path, payload, **kw)
    return server.request(path, data=payload if payload is not None else b"x",
                          headers={"Content-Type": "text/plain", **kw.pop("headers", {})}, **kw)


def test_requests_from_elsewhere_are_refused_and_change_nothing(server, tmp_path):
    work = tmp_path / "work"
    (work / "uploads" / "a.jpg").write_bytes(JPEG)
    before = snapshot(work)
    app = f"127.0.0.1:{server.port}"
    for path, payload in POSTS:
        # no token (a form or a no-cors fetch from another page), a guessed token
        _one_line_403(*_post(server, path, payload, token=False), "token")
        _one_line_403(*_post(server, path, payload, token="guessed"), "token")
        # the right token (say, leaked) but sent from another origin, or marked cross-site /
        # same-site (another port of localhost) by the browser
        for headers, why in (({"Origin": "http://attacker.example"}, "another origin"),
                             ({"Origin": f"http://localhost:{server.port + 1}"}, "another origin"),
                             ({"Origin": "null"}, "another origin"),
                             ({"Origin": f"https://{app}"}, "another origin"),       # its scheme
                             ({"Sec-Fetch-Site": "cross-site"}, "cross-site"),
                             ({"Sec-Fetch-Site": "same-site", "Origin": f"http://{app}"}, "same-site")):
            _one_line_403(*_post(server, path, payload, headers=headers), why)
    # a large refused upload is read to its end: the client sees the refusal, not a reset
    _one_line_403(*server.request("/api/upload?name=big.mp4", data=b"x" * 8_000_000, token=False), "token")
    assert snapshot(work) == before
    # the app's own page does the same: accepted
    status, body = server.request("/api/consent", data=b"", headers={"Origin": f"http://{app}",
                                                                      "Sec-Fetch-Site": "same-origin"})
    assert status == 200 and body == {"consent": True}
    # reading changes nothing but needs the token too, on loopback as elsewhere (another user of
    # the machine could open the page, read the token in it and use the app); another site's
    # image or script tag is refused, and so is a link to the app followed from another site's
    # page (that page could time a double click onto the app's buttons), or to one of its files
    # (which would tell that page which files exist)
    for path in ("/", "/api/state", "/files/uploads/a.jpg", "/static/app.js"):
        _one_line_403(*server.request(path, token=False), "needs its token")
    assert server.request("/api/state")[0] == 200
    # the bare address opened in a browser: the line as text (it was JSON with \u2026 escapes)
    status, body = server.request("/", token=False, headers={"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate",
                                                             "Sec-Fetch-Site": "none", "Accept": "text/html"})
    assert status == 403 and body.decode().startswith("this server needs its token: open the address facepair ui "
                                                      "printed in its terminal, http://.../?token="), body
    # a page of an earlier start (its token gone) is refused on its reads too, whatever cookie
    # the new start left: it looked alive while every change failed
    _one_line_403(*server.request("/api/state", token="an-earlier-token"), "from an earlier start")
    _one_line_403(*server.request("/files/uploads/a.jpg", headers={
        "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}), "cross-site")
    for path in ("/", "/files/uploads/a.jpg"):
        _one_line_403(*server.request(path, headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
                                                     "Sec-Fetch-Dest": "document"}), "type or paste its address")
    assert server.request("/", headers={"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"})[0] == 200


def _get(server, path: str):
    """A GET as the app's page makes it (with its token), -> status, headers, body."""
    req = urllib.request.Request(server.url + path, headers={"X-Facepair-Token": server.token})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()


def test_files_of_the_work_folder_are_never_active_content(server, tmp_path):
    work = tmp_path / "work"
    status, body = server.request("/api/upload?name=a.jpg", data=JPEG)
    assert status == 200 and body["path"] == "uploads/a.jpg", body
    # a page or a drawing is refused as an upload, nothing kept; one copied into the folder by
    # hand is still served as a download
    for name, data in (("page.html", b"<script>alert(1)</script>"),
                       ("pic.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>')):
        status, body = server.request(f"/api/upload?name={name}", data=data)
        assert status == 415 and not (work / "uploads" / name).exists(), body
        (work / "uploads" / name).write_bytes(data)
    (work / "reports" / "m").mkdir(parents=True)
    (work / "reports" / "m" / "report.html").write_text("<h1>report</h1>")
    (work / "models" / "m").mkdir(parents=True)
    (work / "models" / "m" / "state.json").write_text("{}")
    for rel in ("uploads/page.html", "uploads/pic.svg", "models/m/state.json"):
        status, h, _ = _get(server, f"/files/{rel}")
        assert status == 200 and h["content-disposition"].startswith("attachment"), (rel, h)
        assert h["content-type"] == "application/octet-stream" and h["x-content-type-options"] == "nosniff"
        assert h["content-security-policy"].startswith("sandbox"), rel
    status, h, data = _get(server, "/files/uploads/a.jpg")
    assert (h["content-type"], h["x-content-type-options"], data) == ("image/jpeg", "nosniff", JPEG)
    assert "content-disposition" not in h
    status, h, _ = _get(server, "/files/reports/m/report.html")      # the app's own report
    assert h["content-type"].startswith("text/html") and "content-disposition" not in h
    csp = h["content-security-policy"]
    assert csp.startswith("sandbox allow-same-origin;") and "allow-scripts" not in csp
    assert "script-src" not in csp and "default-src 'none'" in csp
    assert "frame-ancestors 'self'" in csp and h["x-frame-options"] == "SAMEORIGIN"
    # the app's own page: a strict policy, no framing, no referrer
    status, h, page = _get(server, "/")
    csp = h["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and h["x-frame-options"] == "DENY"
    assert h["referrer-policy"] == "no-referrer" and h["x-content-type-options"] == "nosniff"
    assert b"<script>" not in page.replace(b'<script src="/static/app.js"></script>', b"")


def test_links_lead_nowhere_outside_the_work_folder(server, tmp_path):
    work, outside = tmp_path / "work", tmp_path / "outside"
    (outside / "faces").mkdir(parents=True)
    (outside / "faces" / "faceset.json").write_text('{"version": 1, "size": 64, "faces": []}')
    (outside / "model").mkdir()
    (outside / "model" / "state.json").write_text("{}")
    (outside / "model" / "log.csv").write_text("step,time_s,loss_a,loss_b\n1,1,0.5,0.5\n")
    (outside / "target.txt").write_text("keep me")
    (work / "faces" / "linked").symlink_to(outside / "faces")
    (work / "models" / "linked").symlink_to(outside / "model")
    (work / "reports" / "linked").symlink_to(outside)
    state = server.request("/api/state")[1]
    assert "linked" not in state["facesets"] and "linked" not in state["models"]
    for path in ("/api/faces/linked", "/api/models/linked", "/files/models/linked/log.csv",
                 "/files/faces/linked/faceset.json"):
        status, body = server.request(path)
        assert status == 403 and str(tmp_path) not in json.dumps(body), (path, body)
    for path, body in (("/api/train", {"model": "linked", "a": ["x"], "b": ["x"]}),
                       ("/api/train", {"model": "m", "a": ["linked"], "b": ["linked"]}),
                       ("/api/extract", {"name": "linked", "inputs": ["uploads"]}),
                       ("/api/faces/linked/remove", {"files": ["a.jpg"]})):
        status, answer = server.request(path, body)
        assert status == 403 and "outside the work folder" in answer["error"], (path, answer)
    # an upload's name that is a planted link (dangling, to a file outside) is not followed or
    # replaced: the upload takes the next free name; the old temporary name leads nowhere either
    (work / "uploads" / "x.jpg").symlink_to(outside / "new.txt")
    (work / "uploads" / ".x.jpg.part").symlink_to(outside / "target.txt")
    status, body = server.request("/api/upload?name=x.jpg", data=JPEG)
    assert status == 200 and body["path"] == "uploads/x-2.jpg"
    assert not (outside / "new.txt").exists() and (outside / "target.txt").read_text() == "keep me"
    assert (work / "uploads" / "x-2.jpg").read_bytes() == JPEG
    assert list((work / ".ui" / "incoming").iterdir()) == []
    assert sorted(p.name for p in outside.iterdir()) == ["faces", "model", "target.txt"]


def test_links_inside_the_folders_a_stage_is_given_are_refused(server, tmp_path):
    """A folder the page names may itself stay inside while something in it leads out (an
    archive unpacked with links, a face set copied with its faces/ as a link): the stage would
    read, write or delete there. Each such request is refused in one line and changes nothing;
    an output name taken by a dangling link is skipped, not written through; a refused preview
    deletes no older preview."""
    work, outside = tmp_path / "work", tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.jpg").write_bytes(JPEG)
    (outside / "dir" / "000000.png").write_bytes(b"keep")
    (outside / "private.txt").write_text("private")
    (work / "pics").mkdir()
    (work / "pics" / "a.jpg").write_bytes(JPEG)
    (work / "pics" / "zz.jpg").symlink_to(outside / "secret.jpg")          # a picture of elsewhere
    (work / "faces" / "evil").mkdir()
    (work / "faces" / "evil" / "faceset.json").write_text(json.dumps(
        {"format": "facepair-faceset", "version": 1, "size": 64, "faces": [{"file": "faces/000000.png"}]}))
    (work / "faces" / "evil" / "faces").symlink_to(outside / "dir")         # its crops: elsewhere
    for name in ("m", "r"):
        (work / "models" / name).mkdir()
        (work / "models" / name / "state.json").write_text("{}")
    (work / "models" / "m" / "previews").mkdir()
    (work / "models" / "m" / "previews" / "latest.png").symlink_to(outside / "private.txt")
    (work / "reports" / "r").mkdir()
    (work / "reports" / "r" / "report_files").symlink_to(outside / "dir")
    (work / "uploads" / "page.mp4").write_text("<html>not a video</html>")
    for k in range(25):
        (work / ".ui" / "previews" / f"old-{k:02d}.png").write_bytes(b"png")
    assert server.request("/api/consent", data=b"")[0] == 200
    before, outside_before = snapshot(work), snapshot(outside)
    for path, body, where in (
            ("/api/extract", {"name": "leak", "inputs": ["pics"]}, "pics/zz.jpg"),
            ("/api/extract", {"name": "evil", "inputs": ["pics/a.jpg"], "append": True}, "faces/evil/faces"),
            ("/api/faces/evil/remove", {"files": ["faces/000000.png"]}, "faces/evil/faces"),
            ("/api/train", {"model": "n", "a": ["evil"], "b": ["evil"]}, "faces/evil/faces"),
            ("/api/train", {"model": "m", "a": ["x"], "b": ["x"]}, "models/m/previews/latest.png"),
            ("/api/evaluate", {"model": "m"}, "models/m/previews/latest.png"),
            ("/api/evaluate", {"model": "r"}, "reports/r/report_files"),
            ("/api/swap", {"model": "m", "input": "pics/a.jpg"}, "models/m/previews/latest.png"),
            ("/api/faces/evil", None, "faces/evil/faces"), ("/api/models/m", None, "models/m/previews")):
        status, answer = server.request(path, body)
        says = "holds a link" if where.startswith("reports/") else "leads outside the work folder"
        assert status == 403 and says in answer["error"], (path, answer)
        assert where in answer["error"] and str(tmp_path) not in answer["error"], (path, answer)
    status, answer = server.request("/api/still", {"input": "uploads/page.mp4"})
    assert status == 400 and "\n" not in answer["error"], answer
    assert snapshot(work) == before and snapshot(outside) == outside_before
    # a swap's output name that is a dangling link: the next free name is taken
    (work / "swaps" / "a-r-a2b.jpg").symlink_to(outside / "new.jpg")
    status, answer = server.request("/api/swap", {"model": "r", "input": "pics/a.jpg"})
    assert status == 200 and answer["output"] == "swaps/a-r-a2b-2.jpg", answer
    assert not (outside / "new.jpg").exists()


def test_records_and_the_apps_own_folders_lead_nowhere_outside(server, tmp_path):
    """A planted model whose state.json names face sets and held-out faces that exist outside
    the work folder gets no report (the report would show them); the app's own folders replaced
    by links while it runs are refused at their next use, nothing written or deleted outside."""
    import os
    work, outside = tmp_path / "work", tmp_path / "outside"
    (outside / "set" / "faces").mkdir(parents=True)
    (outside / "set" / "faces" / "000000.png").write_bytes(b"private face")
    (outside / "set" / "faceset.json").write_text(json.dumps({"format": "facepair-faceset", "version": 1,
                                                               "size": 64, "faces": []}))
    (work / "models" / "m").mkdir()
    (work / "models" / "m" / "state.json").write_text(json.dumps(
        {"format": "facepair-model", "version": 1, "step": 1, "checkpoint": "checkpoints/step-00000001",
         "facesets": {"a": [{"path": str(outside / "set")}], "b": []},
         "validation": {"a": [str(outside / "set" / "faces" / "000000.png")], "b": []}}))
    (work / "uploads" / "a.mp4").write_bytes(ADDRESS.read_bytes()[:200_000])
    assert server.request("/api/consent", data=b"")[0] == 200
    status, answer = server.request("/api/evaluate", {"model": "m"})
    assert status == 403 and "names a file outside the work folder" in answer["error"], answer
    assert str(outside) not in answer["error"] and not (work / "reports" / "m").exists()
    # the same through a face set of the work folder whose faces/ leads out; a pipe in a model
    # folder (reading it would hang the request); a report folder holding any link
    (work / "faces" / "x").mkdir()
    (work / "faces" / "x" / "faceset.json").write_text((outside / "set" / "faceset.json").read_text())
    os.symlink(outside / "set" / "faces", work / "faces" / "x" / "faces")
    state = json.loads((work / "models" / "m" / "state.json").read_text())
    state.update(facesets={"a": [{"path": "faces/x"}], "b": []}, validation={"a": [], "b": []})
    for name, extra in (("n", None), ("p", "log.csv"), ("r", None)):
        (work / "models" / name).mkdir()
        (work / "models" / name / "state.json").write_text(json.dumps(state if name == "n" else {}))
        if extra:
            os.mkfifo(work / "models" / name / extra)
    (work / "reports" / "r").mkdir()
    os.symlink(work / "uploads" / "a.mp4", work / "reports" / "r" / "report.json")
    for path, body, says in (("/api/evaluate", {"model": "n"}, "faces/x/faces"),
                             ("/api/swap", {"model": "n", "input": "uploads/a.mp4"}, "faces/x/faces"),
                             ("/api/models/p", None, "not a file"), ("/api/evaluate", {"model": "p"}, "not a file"),
                             ("/api/evaluate", {"model": "r"}, "holds a link")):
        t = time.monotonic()
        status, answer = server.request(path, body)
        assert status == 403 and says in answer["error"] and time.monotonic() - t < 10, (path, answer)
    assert (work / "uploads" / "a.mp4").stat().st_size == 200_000
    # a face set whose index names footage outside: training would decode it (the cue's
    # calibration); a job folder planted with a link to JSON elsewhere: the page is not shown it
    (outside / "clip.mp4").write_bytes(b"footage")
    (work / "faces" / "y").mkdir()
    (work / "faces" / "y" / "faceset.json").write_text(json.dumps(
        {"format": "facepair-faceset", "version": 1, "size": 64,
         "faces": [{"file": "faces/000000.png", "source": str(outside / "clip.mp4")}]}))
    status, answer = server.request("/api/train", {"model": "t", "a": ["y"], "b": ["y"], "steps": 2})
    assert status == 403 and answer["error"] == (
        "faces/y names a file outside the work folder: clip.mp4 (made on the command line? its "
        "face sets and their footage go in the work folder: docs/ui.md)"), answer
    assert not (work / "models" / "t").exists()
    os.mkfifo(work / "uploads" / "pipe.mp4")          # footage that is a pipe: reading it would hang
    (work / "faces" / "y" / "faceset.json").write_text(json.dumps(
        {"format": "facepair-faceset", "version": 1, "size": 64,
         "faces": [{"file": "faces/000000.png", "source": "uploads/pipe.mp4"}]}))
    t = time.monotonic()
    status, answer = server.request("/api/train", {"model": "t", "a": ["y"], "b": ["y"], "steps": 2})
    assert status == 403 and answer["error"] == "faces/y names something that is not a file: pipe.mp4", answer
    assert time.monotonic() - t < 10 and not (work / "models" / "t").exists()
    (outside / "secret.json").write_text('{"api_key": "SECRET-OUTSIDE"}')
    (work / "faces" / "g").mkdir()
    (work / "faces" / "g" / "faceset.json").write_text(json.dumps(
        {"format": "facepair-faceset", "version": 1, "size": 64, "padding": 0.15, "aligned": True,
         "template": [[20.0, 30.0], [44.0, 30.0]], "faces": []}))
    planted = work / ".ui" / "jobs" / "99999999-999999-9"
    planted.mkdir()
    (planted / "job.json").write_text('{"kind": "extract", "faceset": "g"}')
    shown = {"frames_read": 3, "faces_kept": 2, "frames_without_face": 1, "rejected": {"blurry": 1}}
    (planted / "summary.json").write_text(json.dumps(shown))                         # the app's own: shown
    status, answer = server.request("/api/faces/g")
    assert status == 200 and answer["summary"] == shown, answer
    (planted / "summary.json").unlink()
    (planted / "summary.json").symlink_to(outside / "secret.json")
    status, answer = server.request("/api/faces/g")
    assert status == 200 and answer["summary"] is None and "SECRET" not in json.dumps(answer), answer
    (planted / "summary.json").unlink()
    os.link(outside / "secret.json", planted / "summary.json")
    status, answer = server.request("/api/faces/g")
    assert status == 200 and answer["summary"] is None, answer
    for own, request in ((".ui/previews", ("/api/still", {"input": "uploads/a.mp4"})),
                         ("uploads", ("/api/upload?name=x.jpg", None))):
        (outside / own.replace("/", "_")).mkdir()
        (outside / own.replace("/", "_") / "old.png").write_bytes(b"keep")
        shutil.move(work / own, tmp_path / "moved")
        os.symlink(outside / own.replace("/", "_"), work / own)
        path, body = request
        status, answer = server.request(path, body) if body else server.request(path, data=JPEG)
        assert status == 403 and own in answer["error"] and "\n" not in answer["error"], (own, answer)
        assert [p.name for p in (outside / own.replace("/", "_")).iterdir()] == ["old.png"], own
        (work / own).unlink()
        shutil.move(tmp_path / "moved", work / own)


def test_names_numbers_and_errors_are_checked_in_one_line(server, tmp_path):
    work = tmp_path / "work"
    (work / "uploads" / "a.jpg").write_bytes(JPEG)
    before = snapshot(work)
    for name in ("x\n", "x\r", "x\x00", "a" * 65, "../x", " x", "x y"):
        status, body = server.request("/api/extract", {"name": name, "inputs": ["uploads/a.jpg"]})
        assert status == 400 and body["error"].startswith("bad name") and "\n" not in body["error"], name
    for value in ("nan", "inf", "-inf", "1e999", "NaN"):
        status, body = server.request("/api/extract", {"name": "x", "inputs": ["uploads/a.jpg"], "every": value})
        assert status == 400 and body["error"] == f"every is not a number: {value!r}", body
        status, body = server.request("/api/train", {"model": "m", "a": ["x"], "b": ["x"], "minutes": value})
        assert status == 400, body
    # the same bounds as the command line's (a 1,024 px crop at most)
    status, body = server.request("/api/extract", {"name": "x", "inputs": ["uploads/a.jpg"], "size": 1025})
    assert status == 400 and body["error"] == "size must be at most 1024 (got 1025)", body
    # a body that is not an object: one line, and the request is not echoed back
    status, body = server.request("/api/extract", data=b'["SECRET-ECHO"]', headers={"Content-Type": "application/json"})
    assert status == 400 and "SECRET" not in json.dumps(body) and "\n" not in body["error"]
    assert snapshot(work) == before
    # an upload without its name: refused in one line after its body is read (no reset)
    status, body = server.request("/api/upload", data=b"x" * 300_000)
    assert status == 400 and body["error"] == "bad request (query.name): the upload's name is missing", body
    # a long upload name is cut, not a 500 with the absolute path
    status, body = server.request(f"/api/upload?name={'n' * 300}.jpg", data=JPEG)
    assert status == 200 and body["path"] == f"uploads/{'n' * 100}.jpg"
    # a user error from a stage names the file relative to the work folder, in one line
    (work / "uploads" / "broken.jpg").write_bytes(b"not a picture")
    status, body = server.request("/api/verify", {"path": "uploads/broken.jpg"})
    assert status == 400 and "uploads/broken.jpg" in body["error"] and "\n" not in body["error"], body
    assert str(work) not in json.dumps(body)


def test_crafted_files_in_the_work_folder_delete_nothing_and_crash_nothing(server, tmp_path):
    """Files planted in the work folder (an archive unpacked there, a copied face set): an index
    naming files outside its face set deletes none of them; a loop of links does not take the
    page down; a small picture declaring 144 megapixels is refused before it is decoded; a
    refused report leaves no folder; a log with NaN still shows the model; the cookie-free
    server answers each in one line."""
    from PIL import Image
    work = tmp_path / "work"
    victim = work / "models" / "m" / "state.json"
    victim.parent.mkdir(parents=True)
    victim.write_text("{}")
    (victim.parent / "log.csv").write_text("step,time_s,loss_a,loss_b\n1,1,0.5,0.5\n2,2,nan,inf\n")
    (work / "faces" / "evil" / "faces").mkdir(parents=True)
    (work / "faces" / "evil" / "faceset.json").write_text(json.dumps(
        {"format": "facepair-faceset", "version": 1, "size": 64,
         "faces": [{"file": "../../models/m/state.json"}]}))
    status, body = server.request("/api/faces/evil")
    assert status == 400 and "outside its faces/ folder" in body["error"], body
    status, body = server.request("/api/faces/evil/remove", {"files": ["../../models/m/state.json"]})
    assert status == 400 and victim.exists(), body
    (work / "uploads" / "loop.jpg").symlink_to(work / "uploads" / "loop.jpg")
    status, state = server.request("/api/state")
    assert status == 200 and "uploads/loop.jpg" not in json.dumps(state["media"])
    for path in ("/files/uploads/loop.jpg",):
        status, body = server.request(path)
        assert status == 400 and "\n" not in body["error"], body
    status, body = server.request("/api/verify", {"path": "uploads/loop.jpg"})
    assert status == 400, body
    Image.new("L", (200_000, 720)).save(work / "uploads" / "wide.png")       # 0.14 MB on disk
    t = time.monotonic()
    status, body = server.request("/api/verify", {"path": "uploads/wide.png"})
    assert status == 400 and "too large" in body["error"] and time.monotonic() - t < 10, body
    status, body = server.request("/api/evaluate", {"model": "m", "faces": "abc"})
    assert status == 400 and not (work / "reports" / "m").exists(), body
    status, body = server.request("/api/models/m")
    assert status == 200 and body["log"][-1] == {"step": 2.0, "time_s": 2.0}, body
    for path, payload in (("/api/extract", {"name": "x", "inputs": 5}), ("/api/faces/evil/remove", {"files": 5}),
                          ("/api/train", {"model": "n", "a": 5, "b": ["x"]}),
                          ("/api/train", {"model": "n", "a": ["x"], "b": ["x"], "preset": {"x": 1}})):
        status, body = server.request(path, payload)
        assert status in (400, 404) and "internal error" not in body["error"], (path, body)
    assert victim.exists() and sorted(p.name for p in (work / "models").iterdir()) == ["m"]


def test_a_playlist_reads_no_video_from_elsewhere(server, tmp_path):
    """An HLS playlist naming a video outside the work folder, uploaded under its own name or
    as .mp4: no action decodes it (swap, verify and extract open videos the same way)."""
    outside = tmp_path / "outside.mp4"
    shutil.copy(REAGAN_CLIP, outside)
    playlist = (f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\n{outside}\n"
                "#EXT-X-ENDLIST\n").encode()
    assert server.request("/api/consent", data=b"")[0] == 200
    assert server.request("/api/upload?name=hls.m3u8", data=playlist)[0] == 415   # not kept
    (tmp_path / "work" / "uploads" / "hls.m3u8").write_bytes(playlist)            # copied in by hand
    for name in ("hls.m3u8", "hls.mp4"):
        rel = f"uploads/{name}" if name.endswith(".m3u8") else \
            server.request(f"/api/upload?name={name}", data=playlist)[1]["path"]
        for path, body in (("/api/still", {"input": rel, "seconds": 0}), ("/api/verify", {"path": rel})):
            status, answer = server.request(path, body)
            assert status == 400 and "\n" not in answer["error"], (name, path, answer)
    assert list((tmp_path / "work" / ".ui" / "previews").iterdir()) == []


def test_two_quick_clicks_start_one_job_and_parallel_uploads_keep_the_total(tmp_path):
    from concurrent.futures import ThreadPoolExecutor
    s = Server(tmp_path / "work", "--max-uploads-total-mb", 0.05)        # 52 kB
    try:
        shutil.copy(REAGAN_CLIP, tmp_path / "work" / "clip.mp4")      # not an upload
        token = s.token
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda _: s.request("/api/extract", {"name": "same", "inputs": ["clip.mp4"]},
                                                    token=token)[0], range(4)))
        assert sorted(got) == [200, 409, 409, 409], got
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda k: s.request(f"/api/upload?name=u{k}.mp4", data=b"x" * 20_000,
                                                    token=token)[0], range(4)))
        assert sorted(got) == [200, 200, 413, 413], got
        assert sum(p.stat().st_size for p in (tmp_path / "work" / "uploads").glob("u*.mp4")) == 40_000
        # a steps field as the page sends it ("5.0") is a number like any other, not a 500
        status, body = s.request("/api/train", {"model": "m", "a": ["same"], "b": ["same"], "steps": "5.0"},
                                 token=token)
        assert status in (200, 409), body
    finally:
        s.stop()


def test_uploads_stop_at_the_work_folders_total(tmp_path):
    s = Server(tmp_path / "work", "--max-uploads-total-mb", 0.05)        # 52 kB
    try:
        assert s.request("/api/upload?name=a.mp4", data=b"x" * 30_000)[0] == 200
        status, body = s.request("/api/upload?name=b.mp4", data=b"x" * 30_000)
        assert status == 413 and "total limit" in body["error"]
        chunks = (b"x" * 10_000 for _ in range(3))               # no length given first
        status, body = s.request("/api/upload?name=c.mp4", data=chunks, headers={"Transfer-Encoding": "chunked"})
        assert status == 413 and "total limit" in body["error"]
        assert sorted(p.name for p in (tmp_path / "work" / "uploads").iterdir()) == ["a.mp4"]
    finally:
        s.stop()


def test_uploads_cut_off_by_a_killed_app_are_cleared_at_its_next_start(tmp_path):
    """A part-file of an upload the app was killed in the middle of stayed in .ui/incoming for
    good (never counted in the uploads' total). The next start removes those an hour old; a
    fresh one (another app on the same folder may be receiving it), a link and what the app did
    not name stay."""
    import os
    incoming = tmp_path / "work" / ".ui" / "incoming"
    incoming.mkdir(parents=True)
    stale, fresh, other = incoming / ("a" * 32), incoming / ("b" * 32 + ".jpg"), incoming / "notes.txt"
    for f in (stale, fresh, other):
        f.write_bytes(b"x" * 1000)
    (tmp_path / "victim").write_text("keep me")
    link = incoming / ("c" * 32)
    link.symlink_to(tmp_path / "victim")
    old = time.time() - 7200
    for f in (stale, other):
        os.utime(f, (old, old))
    os.utime(link, (old, old), follow_symlinks=False)
    s = Server(tmp_path / "work")
    try:
        assert s.request("/api/state")[0] == 200
        assert sorted(p.name for p in incoming.iterdir()) == sorted([fresh.name, other.name, link.name])
        assert (tmp_path / "victim").read_text() == "keep me"
    finally:
        s.stop()


def test_a_websocket_request_is_refused_before_any_route():
    """No route takes a WebSocket, and none passes the guard unchecked (an ASGI server with a
    WebSocket library installed hands it over as its own kind of request)."""
    import asyncio
    from facepair.ui.guard import Guard
    reached, sent = [], []

    async def app(scope, receive, send):
        reached.append(scope)

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)
    guard = Guard(app, hosts={"127.0.0.1"}, token="t" * 43)
    asyncio.run(guard({"type": "websocket", "path": "/ws", "headers": [(b"host", b"127.0.0.1:7860")]}, receive, send))
    assert reached == [] and sent == [{"type": "websocket.close", "code": 1008}]
    asyncio.run(guard({"type": "lifespan"}, receive, send))        # the server's start still passes
    assert [s["type"] for s in reached] == ["lifespan"]


# ---- in a real browser -----------------------------------------------------------------------
class Attacker:
    """Another web site: pages served by this test on localhost (the app is on 127.0.0.1, so
    the browser counts this as another site), with a recorder of what its scripts report."""

    def __init__(self):
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = pages.get(self.path.split("?")[0], "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def _attack_page(app: str, job: str) -> str:
    """Every way a page elsewhere can send a request without a preflight, and the ways that
    need one; the page's title reports what its scripts could see."""
    return f"""<!doctype html><html><body>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe><iframe name="sink3"></iframe>
<form id="f1" method="POST" action="{app}/api/consent" enctype="text/plain" target="sink1"><input name="a" value="b"></form>
<form id="f2" method="POST" action="{app}/api/upload?name=planted2.html" enctype="multipart/form-data" target="sink2">
  <input name="file" value="&lt;script&gt;alert(1)&lt;/script&gt;"></form>
<form id="f3" method="POST" action="{app}/api/jobs/{job}/stop" target="sink3"><input name="a" value="b"></form>
<img id="img" src="{app}/files/uploads/a.jpg">
<iframe id="framed" src="{app}/"></iframe>
<script>
(async () => {{
  const app = "{app}", seen = {{}};
  for (const [k, url, body] of [["consent", "/api/consent", "x"],
        ["upload", "/api/upload?name=planted.html", "<script>alert(1)<\\/script>"],
        ["stop", "/api/jobs/{job}/stop", ""]]) {{
    try {{ await fetch(app + url, {{method: "POST", mode: "no-cors", body, headers: {{"Content-Type": "text/plain"}}}}); seen[k] = "opaque"; }}
    catch (e) {{ seen[k] = "error"; }}
  }}
  try {{ const r = await fetch(app + "/api/consent", {{method: "POST", headers: {{"X-Facepair-Token": "guess"}}}}); seen.preflighted = r.status; }}
  catch (e) {{ seen.preflighted = "blocked"; }}
  try {{ seen.read = (await (await fetch(app + "/")).text()).length; }} catch (e) {{ seen.read = "blocked"; }}
  for (const f of ["f1", "f2", "f3"]) document.getElementById(f).submit();
  await new Promise((r) => setTimeout(r, 1500));
  seen.img = document.getElementById("img").naturalWidth;
  document.title = "done " + JSON.stringify(seen);
}})();
</script></body></html>"""


def _tagged_png(path: Path) -> None:
    """A PNG whose metadata tag and C2PA manifest (validly signed with this machine's key)
    carry markup."""
    import c2pa
    from PIL import Image, PngImagePlugin

    from facepair.provenance import credentials
    from facepair.provenance.label import TAG_KEY
    info = PngImagePlugin.PngInfo()
    info.add_text(TAG_KEY, f"synthetic {MARKUP}")
    buf = io.BytesIO()
    Image.open(OBAMA_PHOTOS / "obama.jpg").convert("RGB").resize((256, 256)).save(buf, "PNG", pnginfo=info)
    m = credentials.manifest(path.name)
    m["claim_generator_info"][0]["name"] = f"gen {MARKUP}"
    m["assertions"][0]["data"]["actions"][0]["digitalSourceType"] = f"http://example.test/{MARKUP}"
    out = io.BytesIO()
    with credentials._signer() as signer, c2pa.Builder(m) as b:
        b.sign(signer, "image/png", io.BytesIO(buf.getvalue()), out)
    path.write_bytes(out.getvalue())


def test_the_browser_runs_no_attack_and_no_markup_from_data(tmp_path):
    chromium = _browser_path()
    from playwright.sync_api import expect, sync_playwright
    work = tmp_path / "work"
    srv, evil = Server(work), Attacker()
    try:
        # a legitimate job to stop, and a legitimate photo to show elsewhere
        shutil.copy(ADDRESS, work / "uploads" / "clip.mp4")         # a long extract
        (work / "uploads" / "a.jpg").write_bytes(JPEG)
        status, job = srv.request("/api/extract", {"name": "reagan", "inputs": ["uploads/clip.mp4"], "every": 1})
        assert status == 200 and job["state"] == "running"
        before = snapshot(work / "uploads")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            ctx = browser.new_context()
            page = ctx.new_page()
            answers = []
            page.on("response", lambda r: answers.append((r.request.method, r.url, r.status))
                    if r.url.startswith(srv.url) else None)

            # 1. another site acts in the user's name: every request refused, nothing changed
            evil.pages["/attack.html"] = _attack_page(srv.url, job["id"])
            page.goto(f"{evil.url}/attack.html")
            expect(page).to_have_title(re.compile("^done "), timeout=30_000)
            seen = json.loads(page.title()[5:])
            assert seen["preflighted"] == "blocked" and seen["read"] == "blocked" and seen["img"] == 0, seen
            time.sleep(0.5)
            reached = [a for a in answers if a[0] != "GET" or "/files/" in a[1] or a[1].rstrip("/") == srv.url]
            assert reached and all(status == 403 for _, _, status in reached), reached
            assert not (work / ".ui" / "consent.json").exists()
            assert snapshot(work / "uploads") == before
            assert srv.request(f"/api/jobs/{job['id']}")[1]["state"] == "running"
            assert srv.request(f"/api/jobs/{job['id']}/stop", data=b"")[0] == 200   # the user's Stop

            # 2. a page planted in the work folder (an upload, a report) runs no script there
            (work / "uploads" / "planted.html").write_text(
                "<title>planted</title><script>document.title='pwned'; fetch('/api/consent', {method: 'POST'})</script>")
            (work / "uploads" / "planted.svg").write_text(
                '<svg xmlns="http://www.w3.org/2000/svg"><script>document.title="pwned"</script></svg>')
            page.goto(srv.page_url)             # the user opens the app: its cookie reads the files
            for rel in ("uploads/planted.html", "uploads/planted.svg"):
                with page.expect_download() as download:
                    try:
                        page.goto(f"{srv.url}/files/{rel}")
                    except Exception as e:          # a download is not a page: goto says so
                        assert "Download is starting" in str(e)
                assert download.value.suggested_filename == Path(rel).name
            (work / "reports" / "m" / "report_files").mkdir(parents=True)
            shutil.copy(OBAMA_PHOTOS / "obama.jpg", work / "reports" / "m" / "report_files" / "p.jpg")
            (work / "reports" / "m" / "report.html").write_text(
                "<title>report</title><style>h1{color:red}</style><h1>report</h1><img src='report_files/p.jpg'>"
                "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">")
            page.goto(f"{srv.url}/files/reports/m/report.html")
            time.sleep(0.5)
            assert page.title() == "report"
            assert page.locator("img").first.evaluate("i => i.naturalWidth") > 0     # its pictures show
            assert page.locator("h1").evaluate("h => getComputedStyle(h).color") == "rgb(255, 0, 0)"
            assert not (work / ".ui" / "consent.json").exists()

            # 3. markup in a media file name, a face-set name, a model name, a job's target, a
            # file's tag and its C2PA fields: shown as text on every screen
            (work / "uploads" / f"{MARKUP}.jpg").write_bytes(JPEG)
            for kind, marker in (("faces", "faceset.json"), ("models", "state.json")):
                (work / kind / MARKUP).mkdir()
                (work / kind / MARKUP / marker).write_text('{"version": 1, "size": 64, "faces": []}')
            (work / "models" / "m").mkdir()
            (work / "models" / "m" / "state.json").write_text("{}")
            assert srv.request("/api/consent", data=b"")[0] == 200
            status, swap = srv.request("/api/swap", {"model": "m", "input": f"uploads/{MARKUP}.jpg"})
            assert status == 200 and MARKUP in swap["target"]       # a job whose target holds it
            tagged = tmp_path / "tagged.png"
            _tagged_png(tagged)

            page.add_init_script("""new MutationObserver((ms) => { for (const m of ms) for (const n of m.addedNodes)
                if (n.nodeType === 1 && (n.matches('.pwned, img[src="x"]') || n.querySelector('.pwned, img[src="x"]')))
                  window.made = (window.made || 0) + 1; }).observe(document, {childList: true, subtree: true});""")
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(srv.page_url)
            expect(page.locator("#media")).to_contain_text(MARKUP)
            expect(page.locator("#jobs")).to_contain_text(MARKUP)
            assert MARKUP in page.locator("#faceset").evaluate("s => [...s.options].map(o => o.text).join()")
            for screen in ("train", "swap", "report", "verify"):
                page.click(f"#tab-{screen}")
                page.wait_for_timeout(300)
            assert MARKUP in page.locator("#swap-model").evaluate("s => [...s.options].map(o => o.text).join()")
            assert MARKUP in page.locator("#model-names").evaluate("d => [...d.options].map(o => o.value).join()")
            page.set_input_files("#verify-file", str(tagged))
            expect(page.locator("#v-tag")).to_contain_text(f"synthetic {MARKUP}", timeout=60_000)
            expect(page.locator("#v-c2pa")).to_contain_text(f"gen {MARKUP}")
            expect(page.locator("#v-c2pa")).to_contain_text(MARKUP)
            page.wait_for_timeout(500)
            made = page.evaluate("""() => ({made: window.made || 0, pwned: window.pwned || 0,
                                            now: document.querySelectorAll('.pwned, img[src="x"]').length})""")
            assert made == {"made": 0, "pwned": 0, "now": 0}, made
            assert errors == []

            # 4. the server started again (a new token): the open page says so in one banner
            # (each of its buttons failed in its own words while its reads went on)
            srv.stop()
            srv = Server(work, port=srv.port)
            expect(page.locator("#stale")).to_be_visible(timeout=20_000)
            expect(page.locator("#stale")).to_contain_text("this page is from an earlier start of facepair ui")
            browser.close()
    finally:
        evil.close()
        srv.stop()
