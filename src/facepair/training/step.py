"""One training step (train_step): both autoencoders, their summed loss, one optimizer step;
with a GAN preset, the discriminators' step too."""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def train_step(model, opt, scaler, batch, amp, loss_fn, world: int = 1, gan=None):
    """One step: a batch of A through encoder + decoder A, a batch of B through encoder +
    decoder B, the sum of both losses, one optimizer step. With `gan` = (discriminators, their
    optimizer, adversarial weight, feature-matching weight), each side's discriminator also
    judges its reconstructions: the generator adds an LSGAN term and the L1 distance between the
    discriminator's features of real and rebuilt faces, then the discriminators take their own
    step. Returns the losses (averaged over ranks) as a dict, or None when a loss or, without a
    loss scaler, a gradient is not finite (then no step is taken)."""
    a_in, a_target, b_in, b_target, *marks = batch          # marks: for a landmark-cue model
    with amp:
        rec_a, rec_b = model(a_in, b_in, *marks)
    faces = marks[:2] if len(marks) >= 2 else (None, None)  # the targets' landmarks: masked training
    loss_a, loss_b = loss_fn(rec_a.float(), a_target, faces[0]), loss_fn(rec_b.float(), b_target, faces[1])
    total = loss_a + loss_b
    parts = [loss_a, loss_b]
    if gan is not None:
        disc, opt_d, w_adv, w_fm = gan
        adv = fm = 0.0
        for side, fake, real in (("a", rec_a, a_target), ("b", rec_b, b_target)):
            with amp:
                score, feats = disc[side](fake)
                with torch.no_grad():
                    _, real_feats = disc[side](real)
            adv = adv + ((score.float() - 1) ** 2).mean()
            fm = fm + sum(F.l1_loss(f.float(), r.float()) for f, r in zip(feats, real_feats))
        total = total + w_adv * adv + w_fm * fm
        parts += [adv, fm]
    opt.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    losses = torch.stack([p.detach().float() for p in parts + [total]])
    if world > 1:
        dist.all_reduce(losses)
        losses /= world
    ok = torch.isfinite(losses).all()
    if ok and not scaler.is_enabled():       # bf16/fp32: no scaler to skip a step on inf gradients
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        finite = torch.isfinite(torch.nn.utils.get_total_norm(grads)).float().reshape(1)
        if world > 1:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        ok = bool(finite.item())
    if not ok:
        return None
    scaler.step(opt)
    scaler.update()
    names = ["loss_a", "loss_b", "gan_adv", "gan_fm"][:len(parts)] + ["loss_total"]
    out = dict(zip(names, losses.tolist()))
    if gan is not None:
        opt_d.zero_grad(set_to_none=True)              # drop what the generator's pass left
        d_loss = 0.0
        for side, fake, real in (("a", rec_a, a_target), ("b", rec_b, b_target)):
            with amp:
                real_score, _ = disc[side](real)
                fake_score, _ = disc[side](fake.detach())
            d_loss = d_loss + ((real_score.float() - 1) ** 2).mean() + (fake_score.float() ** 2).mean()
        d_loss.backward()
        if torch.isfinite(d_loss):
            opt_d.step()
        out["gan_d"] = float(d_loss.detach())
    return out


