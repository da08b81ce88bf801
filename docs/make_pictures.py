"""Make the README's pictures from the model of `make demo`: the before/after frame
(docs/before_after.jpg) and the web app's screenshots (docs/ui/*.jpg), with docs/pictures.json
saying which facepair version, git commit and model made them.

    python docs/make_pictures.py [--demo-dir DIR]        (or: make docs)
    python docs/make_pictures.py --only occlusion --occlusion-model MODEL_DIR
    python docs/make_pictures.py --only pairs --pair-model obama=DIR --pair-model feifeili=DIR
    python docs/make_pictures.py --only address --address-model DIR

--demo-dir names a folder that `facepair demo -o DIR` wrote (DIR/model, DIR/swap.mp4): it is
reused as it is. Where it holds no demo yet, the demo runs there first (about 15 minutes on two
cores). The screenshots come from a real `facepair ui` driven in headless Chromium through
Playwright, by clicks on the page only (the page sends what the server asks of it), in a fresh
work folder holding a copy of the demo's model and face sets. Every picture is a JPEG under
300 KB.

--occlusion-model names a Fei-Fei Li (A) -> Andrew Ng (B) model that never saw the headset
microphone (trained on feifeili_clip3 + andrew_clip1; a model trained on clips 1 and 2 learns to
draw the microphone, docs/results.md): docs/occlusion.jpg is then made too, a frame of
feifeili_clip1 with the microphone on the cheek, as it is and swapped with --occlusion none and
auto; `--only occlusion` makes that picture alone and updates its entry in docs/pictures.json.

--pair-model PAIR=MODEL_DIR (obama: Obama -> Reagan trained on obama_clip1; feifeili: Fei-Fei Li
-> Andrew Ng trained on feifeili_clip1 + clip2; benchmarks/quality.py --split cross makes both):
docs/pair_PAIR.jpg, the middle frame of the pair's recording never trained on, as it is and
swapped by each model given for that pair (in the order given: the previous version's first),
with swap's default options, the face enlarged.

--address-model MODEL_DIR (Obama -> Reagan): docs/occlusion_address.jpg, frame ADDRESS_FRAME of
the 720p address (a recording the model never trained on, nothing in front of the face) as it
is and swapped with --occlusion none and auto: what the occlusion map takes for occluders there.
"""
from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MAX_BYTES = 300_000
ADDRESS = "video/obama_weekly_address_720p.mp4"
FRAME = 150                 # the address's frame shown before and after (5 s in)
SWAP_SECONDS = 2            # how much of the address the Swap screen swaps
REPORT_FACES = 16           # faces per side the Report screen evaluates
# every gallery picture inside the window has loaded (the gallery loads lazily)
SHOWN_IMAGES_LOADED = """() => [...document.querySelectorAll('#gallery img')]
    .filter((i) => i.getBoundingClientRect().top < innerHeight)
    .every((i) => i.complete && i.naturalWidth > 0)"""
# Debian's chromium, launched as tests/test_ui.py launches it
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def facepair(*args) -> None:
    subprocess.run([sys.executable, "-m", "facepair", *map(str, args)], check=True)


def ensure_demo(demo_dir: Path) -> None:
    """Reuse the demo in demo_dir, or run it there."""
    if (demo_dir / "model" / "state.json").exists() and (demo_dir / "swap.mp4").exists():
        print(f"reusing the demo in {demo_dir}")
        return
    print(f"running `facepair demo -o {demo_dir}` (about 15 minutes on two cores)")
    facepair("demo", "-o", demo_dir)


def save_jpeg(rgb: np.ndarray | Image.Image, path: Path, width: int | None = None) -> None:
    """A JPEG at most MAX_BYTES: the quality lowered step by step until it fits."""
    img = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)
    img = img.convert("RGB")
    if width and img.width > width:
        img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    for quality in (85, 80, 75, 70, 60, 50, 40):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality, optimize=True)
        if buf.tell() <= MAX_BYTES:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    print(f"wrote {path.relative_to(ROOT)} ({buf.tell() // 1024} KB, quality {quality})")


def video_frame(path: Path, index: int) -> np.ndarray:
    with av.open(str(path)) as c:
        for k, frame in enumerate(c.decode(video=0)):
            if k == index:
                return frame.to_ndarray(format="rgb24")
    raise SystemExit(f"{path} has no frame {index}")


def before_after(address: Path, demo_dir: Path, out: Path) -> dict:
    """The address's frame FRAME beside the same frame of the demo's swap.mp4."""
    pair = np.concatenate([video_frame(address, FRAME), video_frame(demo_dir / "swap.mp4", FRAME)], 1)
    save_jpeg(pair, out, width=1280)
    return {"left": f"{ADDRESS} frame {FRAME}", "right": f"the demo's swap.mp4 frame {FRAME}"}


OCCLUSION_CLIP = "faces/feifeili/feifeili_clip1.mp4"
OCCLUSION_FRAME = 40            # the microphone's ball lies on the cheek, inside the face's outline


def occlusion_picture(samples: Path, model_dir: Path, out: Path) -> dict:
    """A frame of feifeili_clip1 (its microphone on the cheek), and the same frame swapped by
    `model_dir` with --occlusion none and --occlusion auto, each the lower half of the face
    enlarged 2x, side by side."""
    frame = video_frame(samples / OCCLUSION_CLIP, OCCLUSION_FRAME)
    panels = [frame] + [swapped(frame, model_dir, occlusion=mode)[0] for mode in ("none", "auto")]
    zoom = [np.asarray(Image.fromarray(p[96:224, 24:216]).resize((384, 256), Image.LANCZOS)) for p in panels]
    gap = np.full((256, 6, 3), 255, np.uint8)
    save_jpeg(np.concatenate([zoom[0], gap, zoom[1], gap, zoom[2]], 1), out)
    return {"what": f"{OCCLUSION_CLIP} frame {OCCLUSION_FRAME} (rows 96-224, columns 24-216, 2x): "
                    "as it is; swapped with --occlusion none; with --occlusion auto",
            "model": model_record(model_dir, "facepair train --minutes 10 --calibrate-faces 0 "
                                             "(feifeili_clip3 -> andrew_clip1, every frame, 128 px)")}


def swapped(frame: np.ndarray, model_dir: Path, **options) -> tuple:
    """`frame` swapped as a still by `model_dir` with these SwapOptions -> (the swapped copy, the
    SwapSummary, the Swapper: its tracker finds the face's landmarks again)."""
    from facepair.swap.options import SwapOptions
    from facepair.swap.pipeline import SwapSummary, Swapper
    swapper, summary, out = Swapper(model_dir, SwapOptions(progress=False, **options)), SwapSummary(), frame.copy()
    swapper.process([out], 0, False, summary)
    return out, summary, swapper


def model_record(model_dir: Path, made_by: str, upsample: bool = False) -> dict:
    """What a picture's entry in docs/pictures.json says of the model that made it (`upsample`:
    also its decoders' upsampling)."""
    state = json.loads((model_dir / "state.json").read_text())
    record = {"made_by": made_by, "preset": state.get("preset")}
    if upsample:
        record["upsample"] = state["model_config"].get("upsample", "transpose")
    return dict(record, step=state.get("step"), seed=state.get("seed"), precision=state.get("precision"))


NEEDS = {"occlusion": "--occlusion-model", "pairs": "--pair-model",     # what --only X needs
         "address": "--address-model", "colour": "--colour-model"}
PAIR_VIDEOS = {"obama": "faces/obama/obama_clip2.mp4", "feifeili": "faces/feifeili/feifeili_clip3.mp4"}


def pair_picture(samples: Path, pair: str, model_dirs: list[Path], out: Path) -> dict:
    """The middle frame of the pair's recording never trained on, as it is and swapped by each
    model (swap's defaults): the face's box (from the first swap's landmarks) grown 1.8x, 320 px high."""
    return _middle_frame_swaps(samples, pair, [(m, {}) for m in model_dirs], out,
                               "swapped by each model in turn")


def colour_picture(samples: Path, pair: str, model_dir: Path, out: Path) -> dict:
    """As pair_picture, one model: as it is, swapped with --color lab (the default), with
    --color skin."""
    return _middle_frame_swaps(samples, pair, [(model_dir, {"color": "lab"}), (model_dir, {"color": "skin"})],
                               out, "swapped with --color lab, with --color skin")


def _middle_frame_swaps(samples: Path, pair: str, columns: list, out: Path, what: str) -> dict:
    """The middle frame of the pair's recording never trained on, as it is and swapped by each
    (model folder, SwapOptions fields) of `columns`, cut to the face (save_faces)."""
    video = samples / PAIR_VIDEOS[pair]
    with av.open(str(video)) as c:
        middle = c.streams.video[0].frames // 2
    frame = video_frame(video, middle)
    panels, models, marks = [frame], [], None
    for model_dir, options in columns:
        out_frame, _, swapper = swapped(frame, model_dir, **options)
        panels.append(out_frame)
        marks = swapper.tracker.landmarks(frame, 0, False)[0].marks if marks is None else marks
        models.append(dict(model_record(model_dir, "benchmarks/quality.py --split cross --pair " + pair,
                                        upsample=True), **options))
    box = save_faces(panels, marks, out)
    return {"what": f"{PAIR_VIDEOS[pair]} frame {middle} (its middle; columns {box[0]}-{box[2]}, rows "
                    f"{box[1]}-{box[3]}): as it is; {what}",
            "models": models}


def save_faces(panels: list[np.ndarray], marks: np.ndarray, out: Path) -> list[int]:
    """The frames `panels` side by side, each cut to the face's box (from `marks`, its 68
    landmarks) grown 1.8x and 320 px high -> the box [x0, y0, x1, y1]."""
    (x0, y0), (x1, y1) = marks.min(0), marks.max(0)
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.9 * max(x1 - x0, y1 - y0)
    h, w = panels[0].shape[:2]
    box = [int(max(0, cx - half)), int(max(0, cy - half)), int(min(w, cx + half)), int(min(h, cy + half))]
    zoom = [Image.fromarray(p[box[1]:box[3], box[0]:box[2]]) for p in panels]
    zoom = [np.asarray(z.resize((round(320 * z.width / z.height), 320), Image.LANCZOS)) for z in zoom]
    gap = np.full((320, 6, 3), 255, np.uint8)
    save_jpeg(np.concatenate([x for z in zoom for x in (gap, z)][1:], 1), out)
    return box


ADDRESS_FRAME = 300             # the 720p address: highlights on the nose and forehead


def address_picture(samples: Path, model_dir: Path, out: Path) -> dict:
    """A frame of the 720p address (a recording the model never trained on, nothing in front of
    the face) as it is and swapped by `model_dir` with --occlusion none and auto: where the
    occlusion map takes parts of the face for occluders and keeps the source there."""
    frame = video_frame(samples / ADDRESS, ADDRESS_FRAME)
    none, _, swapper = swapped(frame, model_dir, occlusion="none")
    auto, summary, _ = swapped(frame, model_dir, occlusion="auto")
    box = save_faces([frame, none, auto], swapper.tracker.landmarks(frame, 0, False)[0].marks, out)
    return {"what": f"{ADDRESS} frame {ADDRESS_FRAME} (columns {box[0]}-{box[2]}, rows {box[1]}-{box[3]}): "
                    "as it is; swapped with --occlusion none; with --occlusion auto; kept from the source "
                    f"by auto: {summary.kept_share:.1%} of the face",
            "model": model_record(model_dir, "benchmarks/quality.py --split cross --pair obama")}


# ---- the web app's screenshots ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser_path() -> str:
    found = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if not found:
        raise SystemExit("no Chromium on this machine: run `make browser` as root, or apt-get install chromium")
    return found


def work_folder(demo_dir: Path, address: Path, work: Path) -> None:
    """A fresh work folder for the app: the demo's model, its two face sets (their footage
    copied in too) and the address. The copies name each other, not the demo folder: the app's
    report refuses a model whose records name files outside its work folder."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(demo_dir / "model", work / "models" / "demo")
    moved = {}
    for name in ("obama", "reagan"):
        shutil.copytree(demo_dir / "faces" / name, work / "faces" / name)
        moved[str((demo_dir / "faces" / name).resolve())] = str((work / "faces" / name).resolve())
        index = work / "faces" / name / "faceset.json"
        meta = json.loads(index.read_text())
        for e in meta["faces"]:
            clip = work / "footage" / Path(e["source"]).name
            if not clip.exists():
                clip.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(e["source"], clip)
            e["source"] = str(clip.resolve())
        index.write_text(json.dumps(meta, indent=1))

    def inside(path: str) -> str:
        for old, new in moved.items():
            if str(Path(path).resolve()).startswith(old + os.sep) or str(Path(path).resolve()) == old:
                return new + str(Path(path).resolve())[len(old):]
        return path
    state_file = work / "models" / "demo" / "state.json"
    state = json.loads(state_file.read_text())
    for side in state.get("facesets", {}).values():
        for fs in side:
            fs["path"] = inside(fs["path"])
    state["validation"] = {k: [inside(p) for p in v] for k, v in state.get("validation", {}).items()}
    state_file.write_text(json.dumps(state, indent=1))
    shutil.copyfile(address, work / "address.mp4")


def start_server(work: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "facepair", "ui", "--workdir", str(work),
                                 "--port", str(port)], stdout=f, stderr=subprocess.STDOUT)
    for _ in range(300):            # its address, with the token every request needs, as printed
        found = re.search(r"facepair ui: (http://\S+/\?token=[\w-]+)", log.read_text(errors="replace"))
        if found:
            return proc, found.group(1)
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"facepair ui did not start: {log.read_text(errors='replace')[-2000:]}")


def screenshots(work: Path, out_dir: Path, tmp: Path) -> dict:
    """The five screens, each driven by clicks as a user would, shot as PNG then kept as JPEG."""
    from playwright.sync_api import expect, sync_playwright

    proc, url = start_server(work, tmp / "server.log")
    shots, done = tmp / "shots", {}
    shots.mkdir(exist_ok=True)
    minute = 60_000
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path(), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.click("#consent-ok")                       # the usage policy, once
            expect(page.locator("#consent")).to_be_hidden()

            # 1. Faces: the demo's face set of Reagan (once the first set's gallery is in: the
            # page loads it on opening, and a second load started meanwhile may finish first)
            expect(page.locator("#fs-counts")).to_contain_text(" faces", timeout=minute)
            page.select_option("#faceset", "reagan")
            faces = len(json.loads((work / "faces/reagan/faceset.json").read_text())["faces"])
            expect(page.locator("#fs-counts")).to_contain_text(f"{faces} faces", timeout=minute)
            page.wait_for_function(SHOWN_IMAGES_LOADED, timeout=minute)
            page.screenshot(path=shots / "1-faces.png")
            done["ui/1-faces.jpg"] = "Faces screen: the demo's face set of Reagan"

            # 2. Train: the demo's model, its preview grid and loss curves
            page.click("#tab-train")
            page.fill("#model-name", "demo")
            page.check("#train-a input[value='obama']")             # the sets the demo trained on
            page.check("#train-b input[value='reagan']")
            expect(page.locator("#train-preview")).to_have_attribute("src", re.compile("latest.png"),
                                                                     timeout=minute)
            expect(page.locator("#loss-chart polyline.loss_a")).to_have_count(1, timeout=minute)
            page.wait_for_timeout(1500)
            page.screenshot(path=shots / "2-train.png")
            done["ui/2-train.jpg"] = "Train screen: the demo model (not training), preview grid and loss curves"

            # 3. Swap: one frame previewed, then the first seconds of the address swapped
            page.click("#tab-swap")
            page.select_option("#swap-model", "demo")
            page.select_option("#swap-input", "address.mp4")
            page.fill("#swap-time", str(FRAME / 30))
            page.click("#preview-btn")
            expect(page.locator("#preview-status")).to_contain_text("1 face(s) swapped", timeout=5 * minute)
            page.fill("#swap-seconds", str(SWAP_SECONDS))
            page.click("#swap-start")
            expect(page.locator("#swap-job")).to_have_attribute("data-state", "done", timeout=10 * minute)
            expect(page.locator("#swap-verify")).to_contain_text("SYNTHETIC (facepair)", timeout=2 * minute)
            page.wait_for_timeout(1500)
            page.screenshot(path=shots / "3-swap.png")
            done["ui/3-swap.jpg"] = (f"Swap screen: the address at {FRAME / 30:g} s before and after, "
                                     f"then its first {SWAP_SECONDS} s swapped and verified")

            # 4. Verify: the file just swapped
            page.click("#tab-verify")
            output = max((work / "swaps").glob("*.mp4"), key=lambda f: f.stat().st_mtime)
            page.set_input_files("#verify-file", str(output))
            expect(page.locator("#v-verdict")).to_have_text("SYNTHETIC (made by facepair)", timeout=2 * minute)
            page.screenshot(path=shots / "4-verify.png")
            done["ui/4-verify.jpg"] = "Verify screen: the swapped clip's watermark, tag and C2PA manifest"

            # 5. Report: evaluate the demo's model on a few faces and read the report
            page.click("#tab-report")
            page.select_option("#report-model", "demo")
            page.fill("#report-faces", str(REPORT_FACES))
            page.click("#report-run")
            expect(page.locator("#report-job")).to_have_attribute("data-state", "done", timeout=10 * minute)
            frame = page.frame_locator("#report-frame")
            expect(frame.locator("img").first).to_be_visible(timeout=minute)
            page.wait_for_timeout(1500)
            page.screenshot(path=shots / "5-report.png")
            done["ui/5-report.jpg"] = f"Report screen: evaluate on {REPORT_FACES} held-out faces per side"
            browser.close()
    finally:
        proc.send_signal(2)                 # Ctrl-C, as a user stops it
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    for name in done:
        save_jpeg(Image.open(shots / (Path(name).stem + ".png")), out_dir / name)
    return done


# ---- what made them ----------------------------------------------------------------------------------
def git(*args) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
        return done.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def provenance(demo_dir: Path, pictures: dict) -> dict:
    from facepair import __version__
    state = json.loads((demo_dir / "model" / "state.json").read_text())
    metrics_file = demo_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    keep = ("video_id_rate", "video_mouth_corr", "video_eyelid_corr", "video_landmark_error",
            "video_detail", "frame_id_rate_a2b", "frame_id_rate_b2a")
    return {
        "made_by": "docs/make_pictures.py (make docs)",
        "made_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "facepair_version": __version__,
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_tree_changed": bool(git("status", "--porcelain", "--untracked-files=no")),
        "model": {"made_by": "facepair demo (make demo): 10 minutes of training",
                  "preset": state.get("preset"), "step": state.get("step"), "seed": state.get("seed"),
                  "precision": state.get("precision"), "cue_shift": state.get("cue_shift"),
                  "cue_gain": state.get("cue_gain"), "cue_lid_gain": state.get("cue_lid_gain")},
        "demo_metrics": {k: round(metrics[k], 3) for k in keep if k in metrics},
        "pictures": pictures,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo-dir", type=Path, default=ROOT / "demo",
                    help="a folder `facepair demo -o DIR` wrote (reused), or where to run it (default: demo)")
    ap.add_argument("--occlusion-model", type=Path,
                    help="a Fei-Fei Li -> Andrew Ng model folder: also make docs/occlusion.jpg")
    ap.add_argument("--pair-model", action="append", default=[], metavar="PAIR=MODEL_DIR",
                    help=f"also make docs/pair_PAIR.jpg (PAIR: {', '.join(PAIR_VIDEOS)}; "
                         "one column per model given for PAIR, in order)")
    ap.add_argument("--colour-model", action="append", default=[], metavar="PAIR=MODEL_DIR",
                    help="also make docs/colour_PAIR.jpg: the frame of --pair-model's pictures, "
                         "swapped by this model with --color lab and with --color skin")
    ap.add_argument("--address-model", type=Path,
                    help="an Obama -> Reagan model folder: also make docs/occlusion_address.jpg")
    ap.add_argument("--only", choices=["occlusion", "pairs", "address", "colour"],
                    help="make only this picture (and update its entry in docs/pictures.json)")
    args = ap.parse_args()
    from facepair.demo import find_samples
    occlusion = {}
    if args.occlusion_model:
        occlusion = {"occlusion.jpg": occlusion_picture(find_samples(), args.occlusion_model.resolve(),
                                                        DOCS / "occlusion.jpg")}
    pairs: dict = {}
    for entry in args.pair_model:
        pair, _, model = entry.partition("=")
        if pair not in PAIR_VIDEOS or not model:
            raise SystemExit(f"--pair-model {entry}: give PAIR=MODEL_DIR, PAIR one of {', '.join(PAIR_VIDEOS)}")
        pairs.setdefault(pair, []).append(Path(model).resolve())
    for pair, models in pairs.items():
        occlusion[f"pair_{pair}.jpg"] = pair_picture(find_samples(), pair, models, DOCS / f"pair_{pair}.jpg")
    for entry in args.colour_model:
        pair, _, model = entry.partition("=")
        if pair not in PAIR_VIDEOS or not model:
            raise SystemExit(f"--colour-model {entry}: give PAIR=MODEL_DIR, PAIR one of {', '.join(PAIR_VIDEOS)}")
        occlusion[f"colour_{pair}.jpg"] = colour_picture(find_samples(), pair, Path(model).resolve(),
                                                          DOCS / f"colour_{pair}.jpg")
    if args.address_model:
        occlusion["occlusion_address.jpg"] = address_picture(find_samples(), args.address_model.resolve(),
                                                             DOCS / "occlusion_address.jpg")
    if args.only:
        if not occlusion:
            raise SystemExit(f"--only {args.only} needs {NEEDS[args.only]}")
        record = json.loads((DOCS / "pictures.json").read_text())
        record["pictures"].update(occlusion)
        (DOCS / "pictures.json").write_text(json.dumps(record, indent=2) + "\n")
        print("updated docs/pictures.json")
        return
    if not occlusion and (DOCS / "pictures.json").exists():   # kept as made before, if it was
        before = json.loads((DOCS / "pictures.json").read_text()).get("pictures", {})
        occlusion = {k: v for k, v in before.items() if k.startswith(("occlusion", "pair_", "colour_"))}
    demo_dir = args.demo_dir.resolve()
    ensure_demo(demo_dir)
    address = find_samples() / ADDRESS
    pictures = {"before_after.jpg": before_after(address, demo_dir, DOCS / "before_after.jpg"), **occlusion}
    with tempfile.TemporaryDirectory(prefix="facepair-pictures-") as tmp:
        work = Path(tmp) / "work"
        work_folder(demo_dir, address, work)
        pictures.update(screenshots(work, DOCS, Path(tmp)))
    (DOCS / "pictures.json").write_text(json.dumps(provenance(demo_dir, pictures), indent=2) + "\n")
    print("wrote docs/pictures.json")


if __name__ == "__main__":
    main()
