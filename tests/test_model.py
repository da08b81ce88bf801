"""The seed model matches the published specification layer for layer."""
import torch
from torch import nn

from facepair.model.autoencoder import FacePair
from facepair.model.presets import PRESETS


def kinds(module):
    return [(type(m).__name__, getattr(m, "in_channels", getattr(m, "in_features", None)),
             getattr(m, "out_channels", getattr(m, "out_features", None)),
             getattr(m, "kernel_size", None), getattr(m, "stride", None))
            for m in module.modules() if not list(m.children())]


def test_encoder_layers():
    enc = FacePair(PRESETS["seed"].model).encoder
    expected = []
    c_in = 3
    for c in (64, 128, 256, 512):
        expected += [("Conv2d", c_in, c, (5, 5), (2, 2)), ("BatchNorm2d", None, None, None, None),
                     ("LeakyReLU", None, None, None, None)]
        c_in = c
    expected += [("Linear", 512 * 4 * 4, 512, None, None)]
    assert kinds(enc) == expected


def test_decoder_layers():
    dec = FacePair(PRESETS["seed"].model).decoder_a
    layers = kinds(dec)
    assert layers[:3] == [("Linear", 512, 512, None, None), ("Linear", 512, 1024, None, None),
                          ("ReLU", None, None, None, None)]
    convs = [l for l in layers if l[0] in ("ConvTranspose2d", "Conv2d")]
    assert [l[0] for l in convs] == ["ConvTranspose2d", "Conv2d"] * 4
    assert [l[2] for l in convs if l[0] == "Conv2d"] == [512, 256, 128, 3]
    assert all(l[3] == (3, 3) and l[4] == (1, 1) for l in convs if l[0] == "Conv2d")
    assert all(l[4] == (2, 2) for l in convs if l[0] == "ConvTranspose2d")
    assert [l[0] for l in layers].count("BatchNorm2d") == 3
    assert [l[0] for l in layers].count("LeakyReLU") == 3
    assert layers[-1][0] == "Conv2d"                      # the last conv is linear


def test_parameter_count():
    def conv(i, o, k):
        return i * o * k * k + o

    def bn(c):
        return 2 * c

    enc = sum(conv(i, o, 5) + bn(o) for i, o in zip((3, 64, 128, 256), (64, 128, 256, 512)))
    enc += 8192 * 512 + 512
    dec = 512 * 512 + 512 + 512 * 1024 + 1024
    chans = (64, 512, 256, 128, 3)
    for i, (c_in, c_out) in enumerate(zip(chans, chans[1:])):
        dec += conv(c_in, c_in, 2) + conv(c_in, c_out, 3) + (bn(c_out) if i < 3 else 0)
    model = FacePair(PRESETS["seed"].model)
    assert sum(p.numel() for p in model.parameters()) == enc + 2 * dec
    assert sum(p.numel() for p in model.encoder.parameters()) == enc


def test_shapes_and_swap():
    model = FacePair(PRESETS["seed"].model).eval()
    x = torch.rand(2, 3, 64, 64)
    assert model.encoder(x).shape == (2, 512)
    ra, rb = model(x, x)
    assert ra.shape == rb.shape == (2, 3, 64, 64)
    out = model.swap(x, "b")                  # A's faces through B's decoder, as images
    with torch.no_grad():
        z = model.encode(x)
        assert torch.equal(out, model.decode(z, "b").clamp(0, 1))
        assert not torch.allclose(out, model.decode(z, "a").clamp(0, 1))
    assert isinstance(model.decoder("a"), nn.Module) and model.decoder("a") is model.decoder_a


def test_fused_upsampling_equals_transposed_conv_then_conv():
    from facepair.model.upconv import fused_up_conv
    torch.manual_seed(0)
    for c_in, c_out, side in [(64, 512, 4), (256, 128, 16), (128, 3, 32)]:
        up, conv = nn.ConvTranspose2d(c_in, c_in, 2, stride=2), nn.Conv2d(c_in, c_out, 3, padding=1)
        x = torch.randn(2, c_in, side, side)
        ref, got = conv(up(x)), fused_up_conv(x, up, conv)
        assert got.shape == ref.shape
        assert (got - ref).abs().max() < 1e-4 * ref.abs().max()
        ref = conv(nn.functional.interpolate(x, scale_factor=2, mode="nearest"))   # resize-conv
        got = fused_up_conv(x, None, conv)
        assert got.shape == ref.shape
        assert (got - ref).abs().max() < 1e-4 * ref.abs().max()


def test_swaps_keep_the_fused_kernel_and_get_the_same_numbers():
    """Without gradients (swap, evaluate) each stage's combined kernel is kept and reused: the
    same numbers as working it out afresh, in float32 and under bf16 autocast, and a weight
    changed in place (a training step) is seen at the next call."""
    import contextlib

    from facepair.model.upconv import fused_up_conv
    torch.manual_seed(0)
    up, conv = nn.ConvTranspose2d(32, 32, 2, stride=2), nn.Conv2d(32, 16, 3, padding=1)
    x = torch.randn(4, 32, 8, 8)
    for amp in (contextlib.nullcontext(), torch.autocast("cpu", torch.bfloat16)):
        with amp:
            fresh = fused_up_conv(x, up, conv)              # with gradients: never kept
            with torch.no_grad():
                first, again = fused_up_conv(x, up, conv), fused_up_conv(x, up, conv)
        kept = getattr(conv, "_fused_kept", None)
        assert kept is not None
        with amp, torch.no_grad():
            fused_up_conv(x, up, conv)
        assert conv._fused_kept is kept                       # reused, not worked out again
        assert torch.equal(first, fresh.detach()) and torch.equal(again, fresh.detach())
    with torch.no_grad():
        before = fused_up_conv(x, up, conv)                 # kept, in float32
        conv.weight.mul_(1.5)
        up.bias.add_(0.25)
        changed = fused_up_conv(x, up, conv)
    assert torch.equal(changed, fused_up_conv(x, up, conv).detach())
    assert not torch.allclose(changed, before)
    fresh = fused_up_conv(x, None, conv)                    # the resize-convolution: kept too
    with torch.no_grad():
        first, kept = fused_up_conv(x, None, conv), conv._fused_kept
        assert torch.equal(fused_up_conv(x, None, conv), first) and conv._fused_kept is kept
    assert torch.equal(first, fresh.detach())


def test_weights_cast_once_for_inference_give_the_same_numbers():
    """A swap stores the conv and dense weights in bf16 once instead of autocast casting them at
    every batch: the same outputs under bf16 autocast, on the default preset, the seed's
    transposed convs and the transformer's; BatchNorm keeps float32; fp32 casts nothing. Where
    the CPU has no native bf16 (emulated kernels; swaps there run in fp32 and cast nothing) the
    transformer's numbers may move by bf16's rounding (seen: 0.0012 on a 2-core AMD EPYC with
    AVX2 only), so there they must agree to within a bf16 step of 1."""
    from facepair.runtime import cast_for_inference, cpu_has_bf16
    torch.manual_seed(0)
    x = torch.rand(1, 3, 128, 128)             # one face: emulated bf16 (AVX2 only) is slow
    for name in ("hd", "seed", "seq2seq"):
        model = FacePair(PRESETS[name].model).eval()
        faces = x if model.cfg.size == 128 else x[:, :, ::2, ::2]
        marks = torch.rand(1, 68, 2) * model.cfg.size if model.cfg.cue_points else None

        def swap():
            with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
                return model.swap(faces, "b", marks).float()
        before, again = swap(), swap()                  # the second: fused kernels kept
        assert torch.equal(again, before)
        cast_for_inference(model, "bf16")
        assert next(m for m in model.modules() if isinstance(m, nn.Linear)).weight.dtype == torch.bfloat16
        assert all(p.dtype == torch.float32 for m in model.modules() if isinstance(m, nn.BatchNorm2d)
                   for p in m.parameters())
        assert not any(p.requires_grad for p in model.parameters())
        after = swap()
        assert torch.equal(after, before) if cpu_has_bf16() else \
            float((after - before).abs().max()) <= 2 ** -8, name
    model = FacePair(PRESETS["mouth"].model)
    cast_for_inference(model, "fp32")
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_python_api_functions_survive_submodule_imports():
    import facepair
    import facepair.evaluate.score  # noqa: F401  (imports the swap and model modules)
    import facepair.training.loop  # noqa: F401
    assert callable(facepair.extract) and callable(facepair.train) and callable(facepair.verify)


def test_landmark_cue_hides_the_mouth_from_the_encoder_and_drives_the_decoder():
    import pytest
    torch.manual_seed(0)
    model = FacePair(PRESETS["mouth"].model).eval()
    model.cue_mask.zero_()[..., 40:56, 20:44] = 1              # a hard mouth box
    x, marks = torch.rand(2, 3, 64, 64), torch.rand(2, 68, 2) * 64
    y = x.clone()
    y[..., 40:56, 20:44] = torch.rand(2, 3, 16, 24)            # another mouth
    with torch.no_grad():
        assert torch.allclose(model.encode(x), model.encode(y), atol=1e-5)
        assert not torch.allclose(model.encoder(x), model.encoder(y), atol=1e-5)
        open_ = marks.clone()
        open_[:, 57] += torch.tensor([0.0, 6.0])                # lower lip down
        code = model.encode(x)               # (unclamped: an untrained decoder may clamp to 0)
        assert not torch.allclose(model.decode(code, "b", model.cue(marks, "a", "b")),
                                  model.decode(code, "b", model.cue(open_, "a", "b")))
        assert model.swap(x, "b", marks).shape == x.shape
    with pytest.raises(ValueError):
        model.swap(x, "b")                                     # the landmarks are required
    assert model.decoder_a.dense[0].in_features == 512 + 2 * 20     # the mouth's points


def test_cue_shift_and_gain_set_the_swap_cue_only():
    model = FacePair(PRESETS["mouth"].model).eval()
    model.cue_mean.copy_(torch.rand(2, 40))
    marks = torch.rand(3, 68, 2) * 64
    pts = marks[:, 48:68].flatten(1) / 64
    assert torch.allclose(model.cue(marks, "a", "b"), pts - model.cue_mean[0])     # default: own mean
    model.cue_shift[1] = 1.0                                   # swaps into B: B's mean face
    assert torch.allclose(model.cue(marks, "a", "b"), pts - model.cue_mean[1])
    assert torch.allclose(model.cue(marks, "a"), pts - model.cue_mean[0])           # reconstructions
    model.cue_shift[1], model.cue_gain[1] = 0.5, 2.0
    assert torch.allclose(model.cue(marks, "a", "b"), 2 * (pts - model.cue_mean.mean(0)), atol=1e-6)
    assert torch.allclose(model.cue(marks, "a"), pts - model.cue_mean[0])           # unchanged
    assert not {"cue_shift", "cue_gain"} & set(model.state_dict())   # measured, in state.json


def test_lid_cue_reads_each_eyes_gap_whatever_the_faces_place_with_a_gain_of_its_own():
    """hd's cue_lids: two more cue numbers, each eye's lid gap over the inter-ocular distance: a
    face moved in the crop keeps them, a closed eye lowers its own, and in a swap the calibrated
    gains scale the mouth's offsets (cue_gain) and the lids' (cue_lid_gain) apart."""
    from facepair.faces.landmarks import eyelid_gap
    from facepair.model.autoencoder import cue_features
    cfg = PRESETS["hd"].model
    assert cfg.cue_lids and cfg.cue_width == 42 and PRESETS["mouth"].model.cue_width == 40
    model = FacePair(cfg).eval()
    assert model.decoder_a.dense[0].in_features == 512 + 42
    marks = torch.rand(3, 68, 2) * 40 + 44
    marks[:, 36:42, 0] -= 20                                   # the two eyes well apart
    marks[:, 42:48, 0] += 20
    lids = cue_features(marks, cfg)[:, 40:]
    assert torch.allclose(lids.mean(1), torch.from_numpy(eyelid_gap(marks.numpy())), atol=1e-5)
    moved = cue_features(marks + torch.tensor([9.0, -5.0]), cfg)
    assert torch.allclose(moved[:, 40:], lids, atol=1e-5)      # the lids: no shift changes them
    assert not torch.allclose(moved[:, :40], cue_features(marks, cfg)[:, :40])   # the mouth: does
    blink = marks.clone()
    mid = (blink[:, [37, 38]] + blink[:, [41, 40]]) / 2      # the image-left eye closed about
    blink[:, [37, 38]] = blink[:, [41, 40]] = mid              # its centre
    closed = cue_features(blink, cfg)[:, 40:]
    assert (closed[:, 0] < 1e-6).all() and torch.allclose(closed[:, 1], lids[:, 1])
    model.cue_gain[1], model.cue_lid_gain[1] = 3.0, 2.0
    plain = model.cue(marks, "a", "a")
    swapped = model.cue(marks, "a", "b")
    assert torch.allclose(swapped[:, :40], 3 * plain[:, :40], atol=1e-5)
    assert torch.allclose(swapped[:, 40:], 2 * plain[:, 40:], atol=1e-5)
    assert torch.allclose(model.cue(marks, "b", "a"), model.cue(marks, "b"))   # into A: unscaled
    assert "cue_lid_gain" not in model.state_dict()           # measured, in state.json


def test_seq2seq_shapes_bottleneck_and_attention_weights():
    """The transformer preset: patch tokens in, 16 code tokens (512 numbers) between, the same
    FacePair interface (train, swap, cue) as the convolutional pair."""
    torch.manual_seed(0)
    model = FacePair(PRESETS["seq2seq"].model).eval()
    cfg = model.cfg
    assert cfg.arch == "seq2seq" and cfg.latents * (cfg.code // cfg.latents) == 512
    names = [k for k, _ in model.named_parameters()]
    assert any("attn" in k for k in names if k.startswith("encoder."))
    assert any("cross_attn" in k for k in names if k.startswith("decoder_a."))
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.ConvTranspose2d)) for m in model.modules())
    x, marks = torch.rand(3, 3, 64, 64), torch.rand(3, 68, 2) * 64
    z = model.encode(x)
    assert z.shape == (3, 512)                             # the bottleneck: all the decoder sees
    ra, rb = model(x, x, marks, marks)
    assert ra.shape == rb.shape == (3, 3, 64, 64)
    with torch.no_grad():                                  # the decoder reads the code and the cue
        out = model.decode(z, "b", model.cue(marks, "a", "b"))
        assert torch.allclose(model.swap(x, "b", marks, "a"), out.clamp(0, 1))
        other = model.decode(z, "b", model.cue(marks.flip(0), "a", "b"))
        assert not torch.allclose(out, other)             # another mouth: another output
        assert not torch.allclose(out, model.decode(z, "a", model.cue(marks, "a")))
    # each output patch depends on the whole code (attention), not on one region of the input
    x2 = x.clone()
    x2[:, :, :8, :8] = 0                                   # change one corner patch of the input
    with torch.no_grad():
        diff = (model.decode(model.encode(x2), "a", model.cue(marks, "a")) -
                model.decode(z, "a", model.cue(marks, "a"))).abs()
    assert (diff[:, :, 32:, 32:] > 0).any()                # the far corner moves too


def test_temporal_decoder_attends_to_previous_frames_only_through_history():
    """seq2seq-temporal: the decoders also read the k previous frames' code tokens. No history
    means this frame repeated (a video's first frame, a still), and other past frames change the
    output, while the training forward gathers each face's history from its clip in the batch."""
    torch.manual_seed(0)
    model = FacePair(PRESETS["seq2seq-temporal"].model).eval()
    k = model.cfg.context
    assert k == 4 and any("time_pos" in n for n, _ in model.decoder_a.named_parameters())
    x, marks = torch.rand(5, 3, 64, 64), torch.rand(5, 68, 2) * 64
    with torch.no_grad():
        inp = model.inputs(x, "b", marks, "a")
        alone = model.swap(x, "b", marks, "a")
        same = model.swap(x, "b", marks, "a", history=inp[:, None].expand(5, k, -1))
        assert torch.allclose(alone, same, atol=1e-6)
        moved = model.swap(x, "b", marks, "a", history=inp.roll(1, 0)[:, None].expand(5, k, -1))
        assert not torch.allclose(alone, moved, atol=1e-4)
        # training: faces 0..4 one clip; face j's history is faces j-1 .. j-4 (0 repeated)
        prev = torch.tensor([[max(j - i, 0) for i in range(1, k + 1)] for j in range(5)])
        ra, _ = model(x, x, marks, marks, prev, prev)
        a_in = model.inputs(x, "a", marks, "a")
        assert torch.allclose(ra, model.decode(a_in, "a", history=a_in[prev]), atol=1e-5)
        assert torch.allclose(ra[0], model.decode(a_in[:1], "a")[0], atol=1e-5)   # no past: itself


def test_resize_convolutions_draw_no_grid_where_transposed_convs_do():
    """The decoders' x2 steps as transposed convs give each sub-pixel phase its own kernel: a
    grid over the face (evaluate's grid figure: hundreds at initialisation, where a natural
    picture scores about 1). Resize-convolutions (upsample "nearest") have no phases to learn."""
    from dataclasses import replace

    from facepair.evaluate.metrics import grid
    from facepair.model.autoencoder import Decoder
    from facepair.model.presets import get_preset
    figures = {}
    for up in ("transpose", "nearest"):
        cfg = replace(get_preset("hd").model, upsample=up)
        torch.manual_seed(0)
        with torch.no_grad():
            out = Decoder(cfg).eval()(torch.randn(16, cfg.code + cfg.cue_width))
        pixels = out.permute(0, 2, 3, 1).numpy()
        figures[up] = grid(255 * (pixels - pixels.min()) / (pixels.max() - pixels.min()))
    assert figures["transpose"] > 20 and figures["nearest"] < 1.5, figures


def test_a_model_saved_before_upsample_existed_keeps_its_transposed_convs():
    """state.json of models trained before this option has no "upsample": they rebuild with the
    transposed convs they were trained with, while hd builds new ones with
    resize-convolutions."""
    from dataclasses import asdict

    from facepair.model.presets import ModelConfig, config_from_dict, get_preset
    saved = asdict(get_preset("hd").model)
    del saved["upsample"]
    old = FacePair(config_from_dict(ModelConfig, saved))
    assert old.cfg.upsample == "transpose"
    assert isinstance(old.decoder_a.blocks[0].up, nn.ConvTranspose2d)
    assert FacePair(get_preset("hd").model).decoder_a.blocks[0].up is None
    assert all(isinstance(b.up, nn.ConvTranspose2d) for b in FacePair(get_preset("seed").model).decoder_b.blocks)


def test_a_state_file_naming_weights_outside_its_folder_is_refused(tmp_path):
    """state.json's checkpoint names a folder of the model's own checkpoints/, nothing else: a
    planted or hand-edited one that names an absolute path or climbs out is one line, and no
    weights are read from there."""
    import json as _json

    import pytest
    from facepair.errors import FacepairError
    from facepair.model.store import read_state
    for bad in ("/etc", "../other/checkpoints/step-00000001", "checkpoints/../../x", "checkpoints/step-1"):
        (tmp_path / "state.json").write_text(_json.dumps(
            {"format": "facepair-model", "version": 1, "step": 1, "checkpoint": bad}))
        with pytest.raises(FacepairError, match="bad 'checkpoint'"):
            read_state(tmp_path)
    (tmp_path / "state.json").write_text(_json.dumps(
        {"format": "facepair-model", "version": 1, "step": 1, "checkpoint": "checkpoints/step-00000001.2"}))
    assert read_state(tmp_path)["checkpoint"] == "checkpoints/step-00000001.2"
