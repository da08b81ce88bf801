"""The training loop: both autoencoders at once, resumable, fast on CPU and GPU, DDP under torchrun.

    torchrun --nproc-per-node N -m facepair train --a A_SET --b B_SET --model MODEL_DIR
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import shutil
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from .adam import adam
from ..errors import FacepairError, Interrupted
from ..faces.faceset import differs, load_index
from ..media.files import atomic_write_bytes, once
from ..model.discriminator import discriminators
from ..model.presets import (DEFAULT_PRESET, ModelConfig, TrainConfig, config_from_dict,
                             config_to_dict, get_preset)
from ..model.store import PRIOR_FILE, STATE, build, load_weights, read_state, update_state
from ..runtime import autocast, cpu_has_bf16, resolve_device, resolve_precision, to_tensor
from ..stopping import stop_requests
from . import checkpoint, previews
from .data import Batches, cue_stats, load_side
from .losses import make_loss, region_weights
from .options import TrainOptions, TrainResult
from .step import train_step

LOSSES = {"l1": F.l1_loss}          # mean absolute error, as published (validation loss)
LOG_FIELDS = ["step", "time_s", "loss_a", "loss_b", "val_loss_a", "val_loss_b", "images_per_s",
              "gan_adv", "gan_fm", "gan_d", "lr"]
LOCK = ".lock"          # held (flock) by the one run training a folder
OWN_ENTRIES = {"checkpoints", "previews", "tb", "log.csv", STATE, LOCK, *(PRIOR_FILE.format(side=s) for s in "ab")}
MAX_ROLLBACKS = 3


def weights_checksum(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _check_model_dir(model_dir: Path) -> dict | None:
    """The saved state when resuming, None for a new model; refuses a foreign folder."""
    if (model_dir / STATE).exists():
        return read_state(model_dir)
    if model_dir.exists():
        if not model_dir.is_dir():
            raise FacepairError(f"model path is a file, not a folder: {model_dir}")
        foreign = [p.name for p in model_dir.iterdir() if p.name not in OWN_ENTRIES]
        if foreign:
            raise FacepairError(f"not a facepair model folder (no {STATE}, holds "
                                f"{foreign[0]}): {model_dir}")
    return None


def _same_geometry(facesets) -> dict:
    """The face sets' shared geometry (index of the first); a set cut differently (crop size,
    padding, aligned or not) is a one-line error naming it."""
    first = load_index(Path(facesets[0]))
    for folder in facesets[1:]:
        meta = load_index(Path(folder))
        for key in ("size", "padding", "aligned"):
            if meta.get(key, True) != first.get(key, True):
                raise FacepairError(f"face set {folder} was extracted with {key} {meta.get(key, True)}"
                                    f", face set {facesets[0]} with {first.get(key, True)}: extract "
                                    "every face set of a model the same way")
    return first


def _resume_point(saved: dict, restore, model_dir: Path) -> dict:
    """Restore the checkpoint state.json names or, when it is missing or damaged, the newest
    one that loads (with a one-line warning); the state of the one restored."""
    failed = None
    for st in checkpoint.restore_points(model_dir, saved):
        try:
            restore(st)
        except FacepairError as e:
            failed = failed or (st["checkpoint"], e)
            continue
        if failed:
            warnings.warn(f"checkpoint {failed[0]} does not load ({failed[1]}); resuming from "
                          f"{st['checkpoint']} (step {st['step']})")
        return st
    raise FacepairError(f"no checkpoint in {model_dir} loads (the folder's weights are damaged or "
                        f"gone; the newest: {failed[1] if failed else 'none saved'})")


def _read_log(path: Path, upto: int) -> list[dict]:
    """log.csv rows up to step `upto` (rows after the resumed checkpoint are dropped)."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= upto]


def _write_log(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, LOG_FIELDS)
    w.writeheader()
    w.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


# ---------------------------------------------------------------------------------------------
# a side with fewer training faces than this (10 s of video at 30 fps) is warned about
SMALL_FACESET = 300


def small_faceset(side: str, faces: int) -> str:
    """What to expect of a side with few faces (measured with 8 s per person, docs/results.md)."""
    return (f"side {side} has only {faces} face{'' if faces == 1 else 's'} to train on (under {SMALL_FACESET}, about 10 s of "
            "video): expect swaps of new footage that follow the mouth less (8 s a side: mouth r "
            "0.82 and 0.83 on the two development pairs, against 0.85 and 0.87 with all their "
            "footage) and, where the two people's skin differs, "
            "patches of the other's skin colour (swap --color skin evens their colour out); a minute of "
            "footage in several lights helps most")


def fp32_note() -> str:
    """What training on a CPU without native bf16 costs (measured, docs/results.md): said at the
    start, so that a user can choose --minutes before waiting."""
    return ("training in fp32: facepair finds no native bf16 (AVX-512 BF16 or AMX) on this CPU, so "
            "a minute trains about a fifth of the steps behind the README's figures (hd, 20 minutes "
            "on 2 cores: 548 steps against 2,940; the mouth and eyelids then follow less).\n"
            "  About 5 times the --minutes give as many steps; --batch-size 8 gives twice the steps "
            "in the same minutes (its trade-offs: docs/results.md, \"Smaller batches in fp32\").")


@contextlib.contextmanager
def _only_run(model_dir: Path):
    """Hold the model folder for this run: a second `train` on it (a second window, the web app
    and a terminal) is refused at once, where both wrote checkpoints into one folder and one
    died, its steps lost. A lock the system drops when the process ends (a kill included)."""
    try:
        import fcntl
    except ImportError:                    # not on this system (Windows): no guard
        yield
        return
    with open(model_dir / LOCK, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FacepairError(f"model folder {model_dir} is being trained by another run: let it "
                                "finish or stop it first") from None
        except OSError as e:               # a file system without locks (some network mounts)
            warnings.warn(f"{model_dir} cannot be locked ({e.strerror}): nothing stops a second "
                          "run from training it at the same time")
        yield


def train(opts: TrainOptions) -> TrainResult:
    """Train (or resume) the model folder `opts.model_dir`, held against other runs for the time
    (rank 0 holds it under torchrun). A folder this call made is removed again if it fails
    before anything is saved in it."""
    model_dir = Path(opts.model_dir)
    saved = _check_model_dir(model_dir)    # a file, or a folder of something else: said first
    if int(os.environ.get("RANK", 0)) != 0:
        return _train(opts, saved)
    made = next((p for p in reversed([model_dir, *model_dir.parents]) if not p.exists()), None)
    model_dir.mkdir(parents=True, exist_ok=True)
    try:
        with _only_run(model_dir):
            return _train(opts, saved)
    except BaseException:
        if made is not None and not [p for p in made.rglob("*") if p.is_file() and p.name != LOCK]:
            shutil.rmtree(made, ignore_errors=True)      # nothing saved: the folders go again
        raise


def _train(opts: TrainOptions, saved: dict | None) -> TrainResult:
    """train()'s run; `saved`: the folder's state (None: a new model)."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    model_dir = Path(opts.model_dir)

    # --- recipe: the preset, the saved config when resuming, then the flags given -------------
    if saved and opts.preset and opts.preset != saved["preset"]:
        raise FacepairError(f"model folder {model_dir} was trained with preset '{saved['preset']}'"
                            f", not '{opts.preset}' (use another --model folder for a new preset)")
    preset = get_preset(saved["preset"] if saved else opts.preset or DEFAULT_PRESET)
    try:
        mcfg = config_from_dict(ModelConfig, saved["model_config"]) if saved else preset.model
        tcfg = config_from_dict(TrainConfig, saved["train_config"]) if saved else preset.train
        if tcfg.loss not in LOSSES:
            raise FacepairError(f"unknown loss '{tcfg.loss}'")
    except FacepairError as e:                      # a hand-edited state.json
        raise FacepairError(f"damaged model folder {model_dir}: {e}") from None
    except KeyError as e:
        raise FacepairError(f"damaged model folder {model_dir}: no '{e.args[0]}' in its state.json") from None
    overrides = {k: v for k, v in dict(lr=opts.lr, batch_size=opts.batch_size, flip=opts.flip,
                                       affine=opts.affine, color=opts.color, warp=opts.warp).items()
                 if v is not None}
    tcfg = replace(tcfg, **overrides)
    if tcfg.batch_size < 1 or tcfg.batch_size % world:
        raise FacepairError(f"--batch-size {tcfg.batch_size} must be a positive multiple of the "
                            f"number of processes ({world})")
    # the cue and masked training read each face's landmarks: the batches carry them
    landmarked = bool(mcfg.cue_points or tcfg.outside_weight != 1)
    if landmarked and (tcfg.flip or tcfg.affine):
        raise FacepairError(f"preset '{preset.name}' reads the faces' landmarks: --flip and "
                            "--affine would move the faces away from them")
    if opts.steps is not None and opts.steps < 0 or opts.minutes is not None and opts.minutes <= 0:
        raise FacepairError("--steps must be >= 0 and --minutes > 0")
    if saved and opts.steps is not None and saved["step"] >= opts.steps:
        # --steps is the total to reach: nothing to do, and nothing in the folder touched (it
        # used to load both face sets, split them again if they had moved, and say "trained")
        warnings.warn(f"model {model_dir} is at step {saved['step']} already: nothing trained "
                      f"(--steps is the total to reach; give more than {saved['step']}, or --minutes)")
        return TrainResult(str(model_dir), preset.name, saved["step"], saved["step"], 0.0, 0.0)

    # --- data ---------------------------------------------------------------------------------
    # a face set named twice on a side (`--a A A`, `--a A ./A/`): read once (it was trained on
    # twice, its faces twice as likely as another set's, its validation faces listed twice)
    opts = replace(opts, a=once(opts.a), b=once(opts.b))
    geometry = _same_geometry([*opts.a, *opts.b])  # (each read: one missing, or a link in a loop, named)
    both = {Path(f).resolve() for f in opts.a} & {Path(f).resolve() for f in opts.b}
    if both:
        raise FacepairError(f"face set {sorted(both)[0]} is given for both --a and --b: a model "
                            "learns two people, one on each side")
    if geometry["size"] != mcfg.size:
        raise FacepairError(f"face set {opts.a[0]} has {geometry['size']} px faces; preset "
                            f"'{preset.name}' needs {mcfg.size} px (extract with --size {mcfg.size})")
    trained = (saved or {}).get("faces", {})        # a resume: the faces it was trained on
    if key := differs(geometry, trained, ("aligned", "padding")):
        raise FacepairError(f"face set {opts.a[0]} was extracted with {key} {geometry.get(key, True)}"
                            f"; model {model_dir} was trained on faces with {trained[key]} "
                            "(extract them as the model's, or train a new model)")
    # a resume keeps the seed and the validation faces it started with, whatever the flags say
    seed = saved.get("seed", 0) if saved else (opts.seed or 0)
    if saved and opts.seed is not None and opts.seed != seed:
        warnings.warn(f"--seed {opts.seed} ignored: model {model_dir} goes on with its seed {seed}")
    held = (saved or {}).get("validation", {})
    side_a = load_side(opts.a, mcfg.size, tcfg, rank, world, held.get("a"), mcfg.context)
    side_b = load_side(opts.b, mcfg.size, tcfg, rank, world, held.get("b"), mcfg.context)
    if len(side_a.train) == 0 or len(side_b.train) == 0:
        raise FacepairError("each side needs more faces to train on (found too few)")
    for side, s in (("A", side_a), ("B", side_b)):
        if len(s.train) < SMALL_FACESET and rank == 0 and not saved:     # said once, at the start
            warnings.warn(small_faceset(side, len(s.train)))
    if saved:
        for side, s in (("a", side_a), ("b", side_b)):
            old = {f["path"]: f.get("fingerprint")     # (read_state checked each has its path)
                   for f in saved.get("facesets", {}).get(side, [])}
            if old == {f["path"]: f["fingerprint"] for f in s.sets}:
                continue
            before = set(held.get(side, []))
            kept = len(before & set(s.val_files))
            warnings.warn(f"face sets of side {side.upper()} changed since this model last trained: " + (
                f"its {kept} validation faces still there stay held out ({len(before) - kept} gone) "
                "and every other face trains" if kept else
                f"none of its {len(before)} validation faces is there, so the faces were split anew "
                f"({len(s.val_files)} held out)"))

    # --- model, optimizer, precision, distribution --------------------------------------------
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if opts.device in ("auto", "cuda") and
                                torch.cuda.is_available() else "gloo")
    device = resolve_device(opts.device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    precision = resolve_precision(opts.precision, device)
    torch.manual_seed(seed)
    core = build(mcfg, model_dir)
    opt_ = adam(core.parameters(), tcfg.lr, (tcfg.beta1, tcfg.beta2), opts.compile)
    disc = opt_d = None
    if tcfg.gan_weight or tcfg.fm_weight:
        if world > 1:
            raise FacepairError(f"preset '{preset.name}' trains a discriminator: run it in one "
                                "process (no torchrun) for now")
        disc = discriminators()
        opt_d = adam(disc.parameters(), tcfg.d_lr, (tcfg.beta1, tcfg.beta2), opts.compile)
    memfmt = torch.channels_last if device.type != "mps" else torch.contiguous_format

    def restore(st: dict | None):
        """Load a checkpoint (the model, its optimizer and any discriminators), then put
        everything on the device with this run's learning rate. None: fresh weights."""
        if st is not None:
            load_weights(model_dir, core, st)
            checkpoint.load_optimizer(model_dir, opt_, st)
            if disc is not None:
                load_weights(model_dir, disc, st, "discriminator")
                checkpoint.load_optimizer(model_dir, opt_d, st, "discriminator")
        for g in opt_.param_groups:
            g["lr"] = tcfg.lr
        for module, o in ((core, opt_), (disc, opt_d)):
            if module is None:
                continue
            module.to(device, memory_format=memfmt)
            for st_ in o.state.values():          # optimizer state follows its parameters
                for k, v in st_.items():
                    if torch.is_tensor(v) and k != "step":
                        st_[k] = v.to(device)

    if mcfg.cue_points and not saved:
        for buf, value in zip((core.cue_mask, core.cue_mean, core.cue_std),
                              cue_stats(side_a.marks, side_b.marks, mcfg)):
            buf.copy_(value)
    if saved:
        saved = _resume_point(saved, restore, model_dir)
    else:
        restore(None)
    # reshuffles: NaN rollbacks so far, each of which reshuffled the data ("salt" in older model folders)
    start_step = saved["step"] if saved else 0
    reshuffles = saved.get("reshuffles", saved.get("salt", 0)) if saved else 0
    model = core
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            core, device_ids=[device.index] if device.type == "cuda" else None)
    if opts.compile:
        model = torch.compile(model)
    amp = autocast(device, precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    weights = region_weights(mcfg.size, geometry["padding"], tcfg.region_weight) \
        if tcfg.region_weight != 1 and geometry.get("aligned", True) else None
    loss_fn = make_loss(tcfg.loss, tcfg.ssim_weight, weights, tcfg.edge_weight, tcfg.outside_weight,
                        tcfg.perceptual_weight, amp)
    val_loss = LOSSES[tcfg.loss]
    batch_local = tcfg.batch_size // world

    # the cue's swap setting was measured on the saved weights: it goes once they change
    calibration = {k: v for k, v in (saved or {}).items() if k.startswith("cue_")}
    state = dict({k: v for k, v in (saved or {}).items()
                  if not k.startswith("cue_") and k != "salt"},      # stale, or renamed
                 preset=preset.name, model_config=config_to_dict(mcfg),
                 train_config=config_to_dict(tcfg), seed=seed, precision=precision,
                 faces={k: geometry[k] for k in ("size", "padding", "aligned", "detector", "template")},
                 facesets={"a": side_a.sets, "b": side_b.sets},
                 validation={"a": side_a.val_files, "b": side_b.val_files}, reshuffles=reshuffles)
    if mcfg.context:               # frames between a temporal decoder's consecutive inputs
        state["clip_stride"] = {"a": side_a.stride, "b": side_b.stride}
    state.setdefault("train_seconds", 0.0)
    val = [to_tensor(s.val).to(device, memory_format=memfmt) for s in (side_a, side_b)]
    val_marks = [torch.from_numpy(s.val_marks).to(device) for s in (side_a, side_b)]

    last_saved = [start_step if saved else -1]        # the step whose weights are on disk

    def save(step):
        if step == start_step:                        # the weights are the saved ones still
            state.update(calibration)
        if rank == 0:
            if step == last_saved[0]:                 # no step since: record the state only
                update_state(model_dir, **{k: v for k, v in state.items() if k not in ("step", "checkpoint")})
            else:
                checkpoint.save(model_dir, step, core, opt_, state, keep=opts.keep,
                                extra={"discriminator": (disc, opt_d)} if disc is not None else None)
        last_saved[0] = step

    def validate_and_preview(step) -> dict:
        core.eval()
        out = {}
        with torch.no_grad(), amp:
            for side, v, m in zip("ab", val, val_marks):
                if len(v):
                    rec = core.decode(core.encode(v), side, core.cue(m, side))
                    out[f"val_loss_{side}"] = float(val_loss(rec.float(), v))
            if rank == 0 and len(val[0]) and len(val[1]):
                img = previews.grid(core, val[0], val[1], *val_marks)
                previews.save(model_dir / "previews", step, img, opts.keep_previews)
        core.train()
        return out

    # --- logs -----------------------------------------------------------------------------------
    if rank == 0:
        model_dir.mkdir(parents=True, exist_ok=True)
    log_rows = _read_log(model_dir / "log.csv", start_step) if rank == 0 else []
    tb = None
    if rank == 0:
        from torch.utils.tensorboard import SummaryWriter
        tb = SummaryWriter(str(model_dir / "tb"), purge_step=start_step + 1)
    if not saved:
        save(0)                          # a valid model folder from the start; rollback target

    # --- the loop -----------------------------------------------------------------------------
    target = opts.steps
    marks = landmarked or bool(mcfg.context)      # clips need them too
    batches = Batches(side_a, side_b, batch_local, tcfg, seed, reshuffles, workers=opts.workers,
                      pin=device.type == "cuda", marks=marks)
    if opts.progress and rank == 0 and device.type == "cpu" and precision == "fp32" \
            and not cpu_has_bf16():
        print(fp32_note(), flush=True)
    # --minutes alone: the bar counts the budget's seconds (a bar with no total gave the web
    # app no share done, and its user no end in sight); the step goes in its postfix
    timed = target is None and bool(opts.minutes)
    bar = tqdm(total=round(opts.minutes * 60) if timed else (target - start_step) if target is not None else None,
               unit="s" if timed else "step", disable=not opts.progress or rank != 0, desc="train",
               dynamic_ncols=True, bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}"
               if timed else None)
    step, rollbacks, failed_at = start_step, 0, -1     # rollbacks since the run last got past failed_at
    t_run = t_begin = time.monotonic()
    # --minutes counts from here, as log.csv's time_s and state.json's train_seconds do
    deadline = t_run + opts.minutes * 60 if opts.minutes else None
    t_prev, ips, losses, extra = t_run, 0.0, [None, None], {}
    # Ctrl-C and SIGTERM: finish the step under way, save once, exit 130 (a second Ctrl-C: now)
    requests = contextlib.ExitStack()
    stop_signal = requests.enter_context(stop_requests())

    def done() -> bool:
        stop = bool(stop_signal) or (target is not None and step >= target) or \
               (deadline is not None and time.monotonic() >= deadline)
        if world > 1:                                  # every rank stops at the same step
            flag = torch.tensor([float(stop)], device=device if device.type == "cuda" else "cpu")
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop

    try:
        while not done():
            batch = [t.to(device, non_blocking=True,
                          memory_format=memfmt if t.dim() == 4 else torch.preserve_format)
                     for t in batches.get(step)]
            if tcfg.warmup_steps:
                for g in opt_.param_groups:
                    g["lr"] = tcfg.lr * min(1.0, (step + 1) / tcfg.warmup_steps)
            gan = (disc, opt_d, tcfg.gan_weight, tcfg.fm_weight) \
                if disc is not None and step >= tcfg.gan_start else None
            result = train_step(model, opt_, scaler, batch, amp, loss_fn, world, gan)
            if result is None:                          # NaN/inf: back to the last good checkpoint
                rollbacks, failed_at = rollbacks + 1, max(failed_at, step)
                if rollbacks > MAX_ROLLBACKS:
                    raise FacepairError(f"training diverged: non-finite loss or gradients at step {step + 1} after "
                                        f"{MAX_ROLLBACKS} rollbacks (try a lower --lr)")
                good = read_state(model_dir)
                restore(good)
                warnings.warn(f"non-finite loss or gradients at step {step + 1}: rolled back to the "
                              f"checkpoint of step {good['step']} and reshuffled the data "
                              f"(rollback {rollbacks} of {MAX_ROLLBACKS})")
                if not timed:
                    bar.update(good["step"] - step)
                step, reshuffles = good["step"], reshuffles + 1
                last_saved[0] = step
                state["reshuffles"] = reshuffles
                batches.close()
                batches = Batches(side_a, side_b, batch_local, tcfg, seed, reshuffles,
                                  workers=opts.workers, pin=device.type == "cuda", marks=marks)
                log_rows = [r for r in log_rows if int(r["step"]) <= step]
                continue
            step += 1
            if step > failed_at:                        # past the trouble: the count starts again
                rollbacks = 0
            losses = [result["loss_a"], result["loss_b"]]
            now = time.monotonic()
            ips = 0.9 * ips + 0.1 * (2 * tcfg.batch_size / max(now - t_prev, 1e-9)) if ips else \
                2 * tcfg.batch_size / max(now - t_prev, 1e-9)
            t_prev = now
            extra = validate_and_preview(step) if step % opts.preview_every == 0 else {}
            if rank == 0:
                gan_logs = {k: round(v, 5) for k, v in result.items() if k.startswith("gan_")}
                row = dict(step=step, time_s=round(state["train_seconds"] + now - t_run, 2),
                           loss_a=round(losses[0], 5), loss_b=round(losses[1], 5),
                           images_per_s=round(ips, 1), **{k: round(v, 5) for k, v in extra.items()},
                           **gan_logs, lr=f"{opt_.param_groups[0]['lr']:.4g}")    # the step's rate
                log_rows.append(row)
                for k in ("loss_a", "loss_b", "images_per_s", *extra, *gan_logs):
                    tb.add_scalar(k, row[k], step)
                bar.update(min(bar.total, round(now - t_begin)) - bar.n if timed else 1)
                bar.set_postfix(**({"step": step} if timed else {}), loss_a=f"{losses[0]:.4f}",
                                loss_b=f"{losses[1]:.4f}", img_s=f"{ips:.0f}", refresh=False)
            if step % opts.save_every == 0:
                state["train_seconds"] = state["train_seconds"] + time.monotonic() - t_run
                t_run = time.monotonic()
                if rank == 0:           # the log first: a kill between leaves rows a resume drops
                    _write_log(model_dir / "log.csv", log_rows)
                    tb.flush()
                save(step)
            elif step % opts.preview_every == 0 and rank == 0:   # watchers see the curve grow
                _write_log(model_dir / "log.csv", log_rows)
        if stop_signal:
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        _finish(state, t_run, step, save, rank, model_dir, log_rows, tb, bar, batches)
        raise Interrupted(f"interrupted at step {step}; checkpoint saved in {model_dir}") from None
    finally:
        requests.close()
    seconds = time.monotonic() - t_begin
    if timed and time.monotonic() >= deadline:      # the budget spent: the bar says so
        bar.update(bar.total - bar.n)
    if step % opts.preview_every:
        extra = validate_and_preview(step)
    if world > 1:                                       # BatchNorm running stats: rank 0's
        for buf in core.buffers():
            dist.broadcast(buf, 0)
        sums = [None] * world
        dist.all_gather_object(sums, weights_checksum(core))
        state["ddp"] = {"world_size": world, "checksums": sums}
    _finish(state, t_run, step, save, rank, model_dir, log_rows, tb, bar, batches)
    if world > 1:
        dist.barrier()
    done_steps = step - start_step
    return TrainResult(str(model_dir), preset.name, start_step, step, seconds,
                       2 * tcfg.batch_size * done_steps / seconds if seconds and done_steps else 0.0,
                       {"loss_a": losses[0], "loss_b": losses[1], **extra})


def _finish(state, t_run, step, save, rank, model_dir, log_rows, tb, bar, batches):
    """Final checkpoint (even after Ctrl-C / SIGTERM), log and TensorBoard flush."""
    batches.close()
    bar.close()
    state["train_seconds"] = state["train_seconds"] + time.monotonic() - t_run
    if rank == 0:
        _write_log(model_dir / "log.csv", log_rows)
        tb.close()
    save(step)
