"""The `facepair` command: one subcommand per stage. Parses flags, calls the stage's function,
and turns user errors into one-line messages with a non-zero exit (never a traceback)."""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import warnings
from pathlib import Path

from .errors import FacepairError, out_of_bounds, shown
from .evaluate import EVAL_FACES
from .stopping import STOP_WITH, stop_with

EXIT_USER, EXIT_INTERRUPTED, EXIT_INTERNAL = 1, 130, 3
EXIT_BROKEN_PIPE = 141      # 128 + SIGPIPE, as a Unix tool whose reader went away


class _Parser(argparse.ArgumentParser):
    """A bad command line is one line and exit 2 (argparse's usage block says nothing --help
    doesn't)."""

    def error(self, message):
        self.exit(2, f"facepair: error: {message} (see {self.prog} --help)\n")


def _number(kind=int, least=None, most=None, above=None):
    """An argparse type: an int or float within bounds."""
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {'an integer' if kind is int else 'a number'}: {text}")
        why = out_of_bounds(v, kind, least, most, above, given=text)
        if why:
            raise argparse.ArgumentTypeError(why)
        return v
    return parse


def _add_extract(sub):
    from .faces import options as fo
    p = sub.add_parser("extract", help="find, landmark, align and store faces from images/videos",
                       description="Find faces in images, folders of images (recursive) and "
                       "videos; store 68 landmarks and aligned crops in a face set folder.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, videos")
    p.add_argument("-o", "--output", required=True, metavar="FACESET_DIR",
                   help="face set folder to create (or extend with --append)")
    p.add_argument("--detector", choices=fo.DETECTORS, default="hog",
                   help="haar: the seed's OpenCV cascade; hog/cnn: dlib's (default: hog)")
    p.add_argument("--size", type=_number(int, fo.MIN_SIZE, fo.MAX_SIZE), default=fo.DEFAULT_SIZE,
                   help=f"crop side in px: 128 for the default preset hd and its variants "
                   f"(hd-*), 64 for the others (default: {fo.DEFAULT_SIZE})")
    p.add_argument("--padding", type=_number(float, 0.0, 0.45), default=fo.DEFAULT_PADDING,
                   help="share of the crop kept around the mean-face template on each side; "
                   f"larger = more context, less detail (default: {fo.DEFAULT_PADDING})")
    p.add_argument("--no-align", action="store_true",
                   help="the seed's plain detector-box crop resized to --size, no alignment")
    p.add_argument("--every", type=_number(int, 1), default=1, metavar="N",
                   help="videos: take every Nth frame (default: 1)")
    p.add_argument("--all-faces", action="store_true",
                   help="keep every face of a frame (default: the largest only)")
    p.add_argument("--identity", nargs="+", metavar="PHOTO",
                   help="keep only faces of the person in these reference photos (or folders of "
                   "them, or their face set)")
    p.add_argument("--threshold", type=_number(float, above=0), default=fo.DEFAULT_THRESHOLD,
                   help="--identity: max embedding distance to a reference "
                   f"(default: {fo.DEFAULT_THRESHOLD})")
    p.add_argument("--min-size", type=_number(float, 0), default=fo.DEFAULT_MIN_SIZE,
                   help=f"reject faces narrower than this in px (default: {fo.DEFAULT_MIN_SIZE})")
    p.add_argument("--min-blur", type=_number(float, 0), default=fo.DEFAULT_MIN_BLUR,
                   help=f"reject crops whose variance of Laplacian (measured at {fo.BLUR_SIDE} px) is "
                   f"below this; 0 keeps all (default: {fo.DEFAULT_MIN_BLUR})")
    p.add_argument("--detect-size", type=_number(int, 0), default=fo.DEFAULT_DETECT_SIZE,
                   help="detect on a copy whose longer side is at most this many px; landmarks "
                   "use full resolution; 0 = detect at full size (default: 480)")
    p.add_argument("--append", action="store_true", help="add to an existing face set")
    p.add_argument("--json", metavar="FILE", help="also write the summary (counts, rejections) as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_extract)


def _run_extract(a):
    from .api import extract
    from .media.files import can_write
    if a.json:
        can_write(a.json)               # before the work, not after it
    summary = extract(a.inputs, a.output, detector=a.detector, size=a.size, padding=a.padding,
                      align_faces=not a.no_align, every=a.every, all_faces=a.all_faces,
                      identity=a.identity, threshold=a.threshold, min_size=a.min_size,
                      min_blur=a.min_blur, detect_size=a.detect_size, append=a.append,
                      progress=not a.quiet)
    print(summary)
    if a.json:
        from .media.files import atomic_write_json
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)     # as evaluate's --json
        atomic_write_json(a.json, summary.to_dict(), follow_links=True)


def _device_option(p) -> None:
    """--device, as train, swap and evaluate take it."""
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto",
                   help="where the model runs (default: auto: a CUDA GPU, else Apple MPS, else the CPU)")


def _add_train(sub):
    from .model.presets import DEFAULT_PRESET, PRESETS
    from .training.options import TrainOptions as T
    p = sub.add_parser("train", help="train the shared-encoder autoencoder pair on two face sets",
                       description="Train both autoencoders together (one shared encoder, a "
                       "decoder for A and one for B). Re-running on an existing model folder "
                       "resumes it. Under torchrun, runs data-parallel (DDP).")
    p.add_argument("--a", nargs="+", required=True, metavar="FACESET", help="face sets of person A")
    p.add_argument("--b", nargs="+", required=True, metavar="FACESET", help="face sets of person B")
    p.add_argument("--model", required=True, metavar="MODEL_DIR", help="model folder (created or resumed)")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help=f"named recipe (default: {DEFAULT_PRESET}, or the model folder's own). "
                   "hd: 128 px faces (extract's default size); in 20 minutes on a new recording "
                   "it beats mouth on identity, lip-sync and blinks. mouth: 64 px faces (extract "
                   "with --size 64), 1.5x hd's steps per minute: pick it for 64 px face sets or "
                   "short runs (docs/presets.md)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=_number(int, 0), help="train until this total step count")
    budget.add_argument("--minutes", type=_number(float, above=0), help="train for this many minutes (this run)")
    p.add_argument("--batch-size", type=_number(int, 1), help="faces per side per step, all ranks together "
                   "(default: the preset's, 32 in seed)")
    p.add_argument("--lr", type=_number(float, above=0), help="learning rate (default: the preset's)")
    p.add_argument("--save-every", type=_number(int, 1), default=T.save_every,
                   help=f"checkpoint every N steps (default: {T.save_every})")
    p.add_argument("--keep", type=_number(int, 1), default=T.keep, help=f"checkpoints to keep (default: {T.keep})")
    p.add_argument("--keep-previews", type=_number(int, 0), default=T.keep_previews,
                   help=f"numbered preview grids to keep; latest.png always stays (default: {T.keep_previews})")
    p.add_argument("--preview-every", type=_number(int, 1), default=T.preview_every,
                   help=f"write a preview grid and validation losses every N steps (default: {T.preview_every})")
    _device_option(p)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                   help="auto: bf16 on CPUs with AVX-512/AMX and on bf16 GPUs, else fp32/fp16")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model (slow to start; measure before using)")
    p.add_argument("--workers", type=_number(int, 1), default=T.workers,
                   help=f"threads preparing batches ahead of the step (default: {T.workers})")
    p.add_argument("--seed", type=_number(int, 0, 2**32 - 1), default=T.seed,
                   help="random seed of a new model (default: 0; a resume keeps the model's own)")
    for flag, what in (("flip", "random horizontal flip"), ("affine", "small random rotation/scale/shift"),
                       ("color", "colour jitter"), ("warp", "the classic deepfake random warp")):
        p.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, default=None,
                       help=f"augmentation: {what} (default: the preset's)")
    p.add_argument("--calibrate-faces", type=_number(int, 0), default=T.calibrate_faces, metavar="N",
                   help="landmark-cue presets: after training, measure how to feed the cue in swaps "
                   "(centre, gain; hd: the lids' gain too) on N training frames per side, swapped "
                   "whole (default: by the training's length, 32 per 2.5 minutes, 256 from 20 "
                   "minutes on; 0: skip)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_train)


def _run_train(a):
    from .api import train
    from .training.options import TrainOptions
    opts = TrainOptions(a=a.a, b=a.b, model_dir=a.model, preset=a.preset, steps=a.steps,
                        minutes=a.minutes, batch_size=a.batch_size, lr=a.lr,
                        save_every=a.save_every, keep=a.keep, keep_previews=a.keep_previews,
                        preview_every=a.preview_every,
                        device=a.device, precision=a.precision, compile=a.compile,
                        workers=a.workers, seed=a.seed, flip=a.flip, affine=a.affine,
                        color=a.color, warp=a.warp, progress=not a.quiet,
                        calibrate_faces=a.calibrate_faces)
    result = train(opts)
    if result is not None:
        print(result)


def _add_swap(sub):
    from .faces.options import DETECTORS
    from .model.presets import DIRECTIONS
    from .swap.options import (BLENDS, COLORS, DEFAULT_ENGINE, ENGINES, MASKS, MAX_CRF, MAX_MASK_PX,
                               MAX_SECONDS, OCCLUSIONS, SwapOptions)
    d = SwapOptions()
    p = sub.add_parser("swap", help="swap faces in an image, a folder of images, or a video",
                       description="Swap faces with a trained model. Outputs carry an invisible "
                       "watermark and a metadata tag labelling them as synthetic.")
    p.add_argument("input", metavar="INPUT", help="image, folder of images, or video")
    p.add_argument("--model", metavar="MODEL_DIR", help="trained model folder (or --map)")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output of the same kind (image file, folder, or .mp4/.mov/.mkv)")
    p.add_argument("--map", action="append", metavar="PHOTO=MODEL_DIR", dest="maps",
                   help="several people, each their own model (repeatable): the faces that match "
                   "PHOTO (a photo with one face, or the person's face set) are swapped by "
                   "MODEL_DIR; faces that match no entry pass through. Instead of --model")
    p.add_argument("--direction", choices=list(DIRECTIONS), default=d.direction,
                   help=f"a2b: faces of A become B (through B's decoder); b2a the reverse "
                   f"(default: {d.direction})")
    p.add_argument("--detector", choices=DETECTORS, default=d.detector,
                   help=f"face detector, as extract's (default: {d.detector})")
    p.add_argument("--detect-size", type=_number(int, 0), default=d.detect_size,
                   help=f"detect on a copy at most this many px wide (default: {d.detect_size})")
    p.add_argument("--detect-every", type=_number(int, 1), default=d.detect_every,
                   help="video: run the detector every N frames, track landmarks between "
                   f"(default: {d.detect_every}; 1 = detect every frame)")
    p.add_argument("--mask", choices=MASKS, default=d.mask,
                   help="hull: convex hull of the landmarks; box: the whole crop (default: hull)")
    p.add_argument("--erode", type=_number(float, 0, MAX_MASK_PX), default=d.erode, help=f"shrink the mask by N crop px (default: {d.erode})")
    p.add_argument("--feather", type=_number(float, 0, MAX_MASK_PX), default=d.feather, help=f"soften the mask edge over N crop px (default: {d.feather})")
    p.add_argument("--color", choices=COLORS, default=d.color,
                   help="colour matching: none, mean (RGB shift), lab (mean/std in L*a*b*), "
                   "hist (histogram matching), skin (lab, then the source's skin colour across "
                   f"the face, from its bare skin: no patches of another skin's) (default: {d.color})")
    p.add_argument("--blend", choices=BLENDS, default=d.blend,
                   help=f"feather (alpha) or seamless (OpenCV Poisson clone) (default: {d.blend})")
    p.add_argument("--occlusion", choices=OCCLUSIONS, default=d.occlusion,
                   help="auto: keep the source's pixels where something lies in front of the face "
                   "(a hand, a microphone: where the source's own rebuild by the model disagrees "
                   f"with it); none: paint the whole mask (default: {d.occlusion})")
    p.add_argument("--identity", nargs="+", metavar="PHOTO",
                   help="swap only the person in these photos (or folders of them, or their face "
                   "set) when several faces are present")
    p.add_argument("--threshold", type=_number(float, above=0), default=d.threshold,
                   help=f"--identity, --map: the largest face-embedding distance that counts as the same "
                   f"person (default: {d.threshold})")
    p.add_argument("--no-smooth", action="store_true",
                   help="video: place each face by its landmarks as found in the frame (default: "
                        "smoothed over its neighbouring frames, both sides)")
    _device_option(p)
    p.add_argument("--engine", choices=ENGINES, default=d.engine,
                   help="what runs the model: torch (PyTorch) or onnx (ONNX Runtime, on the "
                   f"model's exported graph, presets with a convolutional decoder; default: {DEFAULT_ENGINE})")
    p.add_argument("--crf", type=_number(int, 0, MAX_CRF), default=d.crf,
                   help=f"video: x264 quality, 0 (lossless) to {MAX_CRF} (default: {d.crf}; above it "
                        "the output is refused where its watermark no longer reads back)")
    p.add_argument("--duration", type=_number(float, above=0, most=MAX_SECONDS), metavar="SECONDS",
                   help="video: swap only the first SECONDS (default: all)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_swap)


def _run_swap(a):
    from .api import swap
    from .swap.options import SwapOptions
    from .swap.people import parse_map
    if bool(a.model) == bool(a.maps):
        raise FacepairError("give --model MODEL_DIR, or one --map PHOTO=MODEL_DIR per person (not both)")
    if a.maps and a.identity:
        raise FacepairError("--identity and --map both pick faces: with --map, each entry's photo does")
    maps = [parse_map(m) for m in a.maps] if a.maps else None
    opts = SwapOptions(direction=a.direction, detector=a.detector, detect_size=a.detect_size,
                       detect_every=a.detect_every, mask=a.mask, erode=a.erode, feather=a.feather,
                       color=a.color, blend=a.blend, occlusion=a.occlusion, identity=a.identity,
                       threshold=a.threshold,
                       smooth=not a.no_smooth, device=a.device, engine=a.engine, crf=a.crf,
                       duration=a.duration, progress=not a.quiet, maps=maps)
    print(swap(a.input, a.model, a.output, opts))


def _add_evaluate(sub):
    from .model.presets import DIRECTIONS
    from .swap.options import COLORS, SwapOptions
    p = sub.add_parser("evaluate", help="measure a trained model: reconstruction, identity, expression",
                       description="Reconstruction (L1, PSNR, SSIM), identity of swaps (dlib "
                       "embeddings, ID retrieval), expression fidelity (landmark error, "
                       "mouth-opening correlation), on aligned crops and on the faces' whole "
                       "source frames swapped by the real pipeline, and optionally a whole video. "
                       "Uses the model's held-out validation faces unless face sets are given.")
    p.add_argument("--model", required=True, metavar="MODEL_DIR", help="trained model folder")
    p.add_argument("--a", nargs="+", metavar="FACESET", help="face sets of A to evaluate on")
    p.add_argument("--b", nargs="+", metavar="FACESET", help="face sets of B to evaluate on")
    p.add_argument("--max-faces", type=_number(int, 1), default=EVAL_FACES,
                   help=f"faces per side, evenly sampled (default: {EVAL_FACES})")
    p.add_argument("--video", metavar="FILE",
                   help="also swap this video (best: a recording of the source person not used in "
                   "training) and measure it frame by frame: failures, ID, mouth and eyelid "
                   "correlation, landmark error and jitter, flicker, face detail, and the same "
                   "video rebuilt by its own side (SSIM, GMSD)")
    p.add_argument("--direction", choices=list(DIRECTIONS), default="a2b",
                   help="--video: swap direction (default: a2b)")
    p.add_argument("--video-seconds", type=_number(float, above=0), default=None,
                   help="--video: seconds from the start to measure (default: all of it)")
    p.add_argument("--color", choices=COLORS, default=SwapOptions.color,
                   help=f"the whole-frame and video swaps' colour match (as swap's --color; default: {SwapOptions.color})")
    p.add_argument("--crops-only", action="store_true",
                   help="skip the whole-frame figures (they re-read the face sets' source footage)")
    p.add_argument("--json", metavar="FILE.json", help="write every figure to this JSON file (its name ending in .json)")
    p.add_argument("--html", metavar="FILE.html", help="write an HTML report (its name ending in .html; its pictures in NAME_files/ beside it)")
    _device_option(p)
    p.set_defaults(run=_run_evaluate)


def _run_evaluate(a):
    from .api import evaluate
    from .evaluate import report
    if (a.a is None) != (a.b is None):
        raise FacepairError("give both --a and --b, or neither (the model's validation faces)")
    from .model.store import check_output
    from .media.files import can_write
    report.check_outputs(a.json, a.html)            # before the minutes of work, not after
    for out in filter(None, (a.json, a.html)):
        check_output(a.model, out)
        can_write(out)
    res = evaluate(a.model, a=a.a, b=a.b, video=a.video, direction=a.direction,
                   max_faces=a.max_faces, video_seconds=a.video_seconds, device=a.device,
                   frames=not a.crops_only, color=a.color)
    print(report.format_table(res))
    if a.json:
        report.write_json(res, a.json)
        print(f"figures: {a.json}")
    if a.html:
        report.write_html(res, a.html)
        print(f"report: {a.html}")


def _add_export(sub):
    from .model.presets import DIRECTIONS
    p = sub.add_parser("export", help="write one direction of a trained model as an ONNX graph",
                       description="Write the shared encoder and one decoder (with the landmark "
                       "cue's inputs and calibrated setting) as an ONNX graph: inputs 'faces' "
                       "(N, 3, S, S, RGB in [0, 1], aligned crops) and, for cue models, 'marks' "
                       "(N, 68, 2 landmarks in crop pixels); output 'swapped'. Its metadata holds "
                       "the crop size, padding, alignment template, direction and cue setting.")
    p.add_argument("model", metavar="MODEL_DIR", help="trained model folder")
    p.add_argument("-o", "--output", required=True, metavar="FILE.onnx", help="the graph file to write")
    p.add_argument("--direction", choices=list(DIRECTIONS), default="a2b",
                   help="a2b: A's faces decoded as B (default); b2a: the other way")
    p.set_defaults(run=_run_export)


def _run_export(a):
    from .model.export import export
    from .model.store import check_output
    check_output(a.model, a.output)
    meta = export(a.model, a.output, a.direction)
    print(f"{a.output}: {meta['direction']} of a {meta['preset']} model at step {meta['step']}, "
          f"{meta['size']} px faces; inputs {', '.join(meta['inputs'])}")


def _add_demo(sub):
    from .demo import CALIBRATE_FACES, DEFAULT_MINUTES, SWAP_SECONDS
    from .model.presets import DEFAULT_PRESET, PRESETS
    p = sub.add_parser("demo", help="the whole pipeline on the sample footage",
                       description="Extract Obama and Reagan faces from the sample clips, train, "
                       "swap the first 10 s of the 720p address to Reagan (with audio), evaluate. "
                       "Finds the footage in $FACEPAIR_SAMPLES, ../shared/data, or downloads it.")
    p.add_argument("-o", "--output", default="demo", metavar="DIR", help="output folder (default: demo)")
    p.add_argument("--minutes", type=_number(float, above=0), default=DEFAULT_MINUTES,
                   help=f"training budget in minutes (default: {DEFAULT_MINUTES:g}); running the "
                   "demo again on the same folder trains further")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help=f"as in train (default: {DEFAULT_PRESET}, or the demo model's own); faces "
                   "are cut at its crop size")
    p.add_argument("--calibrate-faces", type=_number(int, 0), default=CALIBRATE_FACES, metavar="N",
                   help="as in train: frames per side measuring the landmark cue's swap setting "
                   "(default: as train's, by the training's length)")
    p.add_argument("--eval-faces", type=_number(int, 1), default=EVAL_FACES, metavar="N",
                   help=f"as evaluate's --max-faces: faces per side scored (default: {EVAL_FACES}; "
                   "fewer is faster, the figures less precise)")
    p.add_argument("--swap-seconds", type=_number(float, above=0), default=SWAP_SECONDS, metavar="S",
                   help=f"seconds of the address swapped (default: {SWAP_SECONDS:g})")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_run_demo)


def _run_demo(a):
    from .demo import demo
    demo(a.output, a.minutes, a.preset, progress=not a.quiet, calibrate_faces=a.calibrate_faces,
         eval_faces=a.eval_faces, swap_seconds=a.swap_seconds)


def _add_verify(sub):
    p = sub.add_parser("verify", help="is this file one of ours? (watermark, tag, C2PA manifest)",
                       description="Read facepair's invisible watermark (the public mark: made by "
                       "facepair; the installation mark: made by this installation), metadata tag "
                       "and C2PA content-credentials manifest back. "
                       "Exit 0 when every file carries a mark, 1 when one does not.")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="a picture or video, or a folder: its pictures and videos, subfolders included")
    p.add_argument("--json", action="store_true",
                   help="print one JSON list (a record per file: watermark z-score, bits, grid "
                   "period and offset; installation mark; tag; C2PA manifest) instead of lines")
    p.add_argument("--key", metavar="FILE",
                   help="look for the installation mark of this watermark key file (another "
                   "installation's watermark.key) instead of this installation's")
    p.set_defaults(run=_run_verify)


def _run_verify(a):
    import json
    from .api import verify
    if a.key is not None:                  # a bad key file: one error, before any file is read
        from .provenance.credentials import read_watermark_key
        read_watermark_key(a.key)
    from .provenance.verify import the_files
    all_marked, records = True, []
    for f in the_files(a.files):
        try:
            v, = verify([f], a.key)
        except FacepairError as e:
            records.append({"path": str(f), "error": str(e)})
            if not a.json:      # on stderr, as every error (stdout: one line per file read)
                print(f"facepair: error: {shown(e)}", file=sys.stderr)
            all_marked = False
            continue
        records.append(v.to_json())
        if not a.json:
            print(v)
        all_marked &= v.marked
    if a.json:
        print(json.dumps(records, indent=1))
    if not all_marked:
        raise SystemExit(1)


def _add_ui(sub):
    from .ui import DEFAULT_UPLOAD_MB, DEFAULT_UPLOADS_TOTAL_MB
    p = sub.add_parser("ui", help="a local web app for the whole workflow (faces, train, swap, verify, report)",
                       description="Start the local web app and print its address. It works in "
                       "one work folder: footage is uploaded or put there, and face sets, models, "
                       "swaps and reports are written there. Ctrl-C stops it.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only; another "
                   "address lets other machines in). Every request needs the token printed with "
                   "the address: open the address as printed")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a host name the server answers to besides its own (repeatable; requests "
                   "addressed to any other name are refused)")
    p.add_argument("--port", type=_number(int, 1, 65535), default=7860, help="default: 7860")
    p.add_argument("--workdir", default="facepair-work", metavar="DIR",
                   help="the work folder (default: ./facepair-work, created when missing)")
    p.add_argument("--max-upload-mb", type=_number(float, above=0), default=DEFAULT_UPLOAD_MB,
                   metavar="MB", help=f"largest file the page may upload (default: {DEFAULT_UPLOAD_MB})")
    p.add_argument("--max-uploads-total-mb", type=_number(float, above=0), default=DEFAULT_UPLOADS_TOTAL_MB,
                   metavar="MB", help="most that all uploaded files together may take in the work "
                   f"folder (default: {DEFAULT_UPLOADS_TOTAL_MB})")
    p.set_defaults(run=_run_ui)


def _run_ui(a):
    from .ui.server import serve
    try:
        Path(a.workdir).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FacepairError(f"cannot make the work folder {a.workdir}: {e}") from None
    serve(Path(a.workdir), a.host, a.port, a.max_upload_mb, a.allow_host, a.max_uploads_total_mb)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    parser = _Parser(
        prog="facepair", description="facepair: face swapping with two autoencoders that share "
        "one encoder. Use only with the consent of the people shown; outputs are labelled synthetic.")
    parser.add_argument("--version", action="version", version=f"facepair {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_extract(sub)
    _add_train(sub)
    _add_swap(sub)
    _add_evaluate(sub)
    _add_verify(sub)
    _add_export(sub)
    _add_demo(sub)
    _add_ui(sub)
    return parser


def _terminated(signum, frame):
    raise KeyboardInterrupt     # SIGTERM as Ctrl-C: exit 130 with a word, not 143 in silence


def main(argv=None) -> int:
    warnings.formatwarning = lambda msg, cat, *a, **k: f"facepair: warning: {shown(msg)}\n"
    if sys.stdout is None:          # started with stdout closed (`>&-`): what it says goes nowhere
        sys.stdout = open(os.devnull, "w")
    for stream in (sys.stdout, sys.stderr):     # a path the locale cannot spell is escaped
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    previous = None
    with contextlib.suppress(ValueError):       # (only the main thread may set handlers)
        previous = signal.signal(signal.SIGTERM, _terminated)
    app = os.environ.pop(STOP_WITH, "")        # (popped: not passed on to what this one starts)
    if app.isdigit() and previous is not None:  # a job of the web app (ui/jobs.py)
        stop_with(int(app))
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)
            args.run(args)
        finally:                   # a reader that went away (`| head`) shows here, not at exit
            sys.stdout.flush()
    except BrokenPipeError:        # stop quietly, as `yes | head` does; nothing left to say
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except FacepairError as e:
        print(f"facepair: error: {shown(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("facepair: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as e:       # the file system's answer (a folder where a file was named, no
        # permission, a full disk) is the user's to fix: one line, as FacepairError
        name = e.filename2 or e.filename      # a rename: the destination is the user's path
        where = f": {name}" if name else ""
        print(f"facepair: error: {e.strerror or type(e).__name__}{shown(where)}", file=sys.stderr)
        return EXIT_USER
    except Exception as e:  # a bug, not a user error: still one line unless asked for more
        if os.environ.get("FACEPAIR_DEBUG"):
            raise
        print(f"facepair: internal error: {type(e).__name__}: {e} "
              "(set FACEPAIR_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL
    return 0
