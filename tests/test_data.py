"""Independent tests of tvae_nb.data (shapes, splits, cyclicity, agreement with torchvision, errors)."""
import pytest
import torch
import torchvision.transforms.functional as TF
from hypothesis import given, settings, strategies as st

import math
import torch.nn.functional as F
from tvae_nb.data import (TRANSFORMS, fast_mode, load_mnist, make_sequences, pick, get_device, perspective_warp,
                          perspective_homography, PERSPECTIVE_TILT, PERSPECTIVE_DISTANCE)
from tvae_nb.samplers import SequenceSampler, eval_sequences


@pytest.fixture(scope="module")
def mnist():
    return load_mnist("train", source="embedded", verbose=False), load_mnist("test", source="embedded", verbose=False)


def test_shapes_ranges_dtypes(mnist):
    (xtr, ytr), (xte, yte) = mnist
    assert xtr.shape == (4000, 1, 28, 28) and xte.shape == (1000, 1, 28, 28)
    assert xtr.dtype == torch.float32 and ytr.dtype == torch.int64
    assert ytr.shape == (4000,) and yte.shape == (1000,)
    assert float(xtr.min()) == 0.0 and float(xtr.max()) == 1.0
    assert set(ytr.tolist()) == set(range(10)) == set(yte.tolist())


def test_train_test_disjoint(mnist):
    (xtr, _), (xte, _) = mnist
    key = lambda x: {bytes(r) for r in (x.reshape(len(x), -1) * 255).round().to(torch.uint8).numpy()}
    tr, te = key(xtr), key(xte)
    assert len(tr) > 3900 and len(te) > 990
    assert not tr & te


def test_auto_falls_back_to_embedded(tmp_path, capsys):
    x, y = load_mnist("test", source="auto", root=tmp_path)
    assert x.shape == (1000, 1, 28, 28)
    assert "embedded" in capsys.readouterr().out


@pytest.mark.parametrize("tf", TRANSFORMS)
def test_frame_S_equals_frame_0(mnist, tf):
    x = mnist[1][0][:5]
    start = torch.tensor([0, 3, 7, 11, 17])
    seq = make_sequences(x, tf, 18, start=start)
    # frame S (one full cycle later) is what a sequence starting S phases later shows at frame 0
    later = make_sequences(x, tf, 18, start=start + 18)
    assert torch.equal(seq, later)
    # and the frame after the last one, phase start+S, equals frame 0
    nxt = make_sequences(x, tf, 18, start=start + 17)[:, 1]
    assert torch.allclose(nxt, seq[:, 0], atol=1e-6)


@pytest.mark.parametrize("tf,channels", [("rotation", 1), ("hue", 3), ("scale", 1), ("rotation_hue", 3), ("wobble", 1), ("perspective", 3)])
def test_shapes_per_transform(mnist, tf, channels):
    seq = make_sequences(mnist[1][0][:3], tf, 12)
    assert seq.shape == (3, 12, channels, 28, 28)
    assert seq.min() >= 0 and seq.max() <= 1


def test_rotation_agrees_with_torchvision(mnist):
    x = mnist[1][0][:4]
    S = 18
    start = torch.tensor([0, 5, 9, 13])
    seq = make_sequences(x, "rotation", S, start=start)
    for b in range(4):
        for l in range(S):
            angle = 360.0 / S * ((int(start[b]) + l) % S)
            ref = TF.rotate(x[b], angle, interpolation=TF.InterpolationMode.BILINEAR)
            assert torch.allclose(seq[b, l], ref, atol=1e-4), (b, l)


def test_rotation_is_counter_clockwise():
    img = torch.zeros(1, 1, 28, 28)
    img[0, 0, 13:15, 20:26] = 1.0           # a bar to the right of the centre
    quarter = make_sequences(img, "rotation", 4, start=1)[0, 0, 0]    # 90 degrees
    ys, xs = torch.nonzero(quarter > 0.5, as_tuple=True)
    assert ys.float().mean() < 12 and abs(xs.float().mean() - 13.5) < 1.5   # counter-clockwise: now above


def test_hue_keeps_intensity(mnist):
    x = mnist[1][0][:6]
    seq = make_sequences(x, "hue", 18)
    assert torch.allclose(seq.amax(dim=2), x.expand(6, 18, 28, 28), atol=1e-6)
    # and the colour really turns: frames differ in their channels
    assert (seq[:, 0] - seq[:, 6]).abs().max() > 0.5


def test_scale_range(mnist):
    x = torch.zeros(1, 1, 28, 28); x[0, 0, 4:24, 4:24] = 1.0     # a 20 pixel square
    seq = make_sequences(x, "scale", 18, start=0)[0, :, 0]
    widths = (seq > 0.5).float().sum(-1).amax(-1)                    # widest row, per frame
    assert abs(widths[0] - 12) <= 1.5 and widths[-1] >= 24            # 0.60 and 1.26 of 20 pixels


@settings(max_examples=25, deadline=None)
@given(S=st.integers(2, 24), shift=st.integers(-40, 40), tf=st.sampled_from(TRANSFORMS))
def test_shifted_start_is_a_roll_of_the_sequence(S, shift, tf):
    x = torch.rand(2, 1, 16, 16)
    start = torch.tensor([0, 1])
    a = make_sequences(x, tf, S, start=start)
    b = make_sequences(x, tf, S, start=start + shift)
    assert torch.allclose(torch.roll(a, -shift, dims=1), b, atol=1e-5)


@pytest.mark.parametrize("kwargs,match", [
    (dict(transform="shear"), "transform must be one of"),
    (dict(seq_len=1), "seq_len must be an int >= 2"),
    (dict(seq_len=2.5), "seq_len must be an int >= 2"),
    (dict(start=torch.zeros(3, dtype=torch.long)), r"start must be None, an int, or an integer tensor of shape \(4,\)"),
    (dict(start=torch.zeros(4)), "start must be"),
    (dict(start="0"), "start must be"),
])
def test_bad_arguments(mnist, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_sequences(mnist[1][0][:4], **kwargs)


@pytest.mark.parametrize("images,match", [
    (torch.rand(28, 28), "rank 4"),
    (torch.rand(2, 1, 28), "rank 4"),
    (torch.rand(2, 3, 28, 28), r"\(B, 1, H, H\)"),
    (torch.rand(2, 1, 28, 20), r"\(B, 1, H, H\)"),
    (torch.rand(2, 1, 28, 28) * 2, r"values in \[0, 1\]"),
    (torch.rand(2, 1, 28, 28) - 0.5, r"values in \[0, 1\]"),
    (torch.full((2, 1, 28, 28), float("nan")), r"values in \[0, 1\]"),
    ((torch.rand(2, 1, 28, 28) * 255).to(torch.uint8), "floating point"),
    ([[0.0]], "torch.Tensor"),
])
def test_bad_images(images, match):
    with pytest.raises(ValueError, match=match):
        make_sequences(images, "rotation")


def test_load_mnist_errors():
    with pytest.raises(ValueError, match="split must be"):
        load_mnist("validation")
    with pytest.raises(ValueError, match="source must be"):
        load_mnist("train", source="internet")


def test_sampler_reproducible_and_resumable(mnist):
    (x, y), _ = mnist
    a = SequenceSampler(x, y, "hue", 10, batch_size=3, seed=5)
    b = SequenceSampler(x, y, "hue", 10, batch_size=3, seed=5)
    for _ in range(3):
        ba, bb = a.sample(), b.sample()
        assert torch.equal(ba.x, bb.x) and torch.equal(ba.labels, bb.labels)
    state = a.state_dict()
    n1 = a.sample()
    a.load_state_dict(state)
    assert torch.equal(a.sample().x, n1.x)
    assert n1.start.shape == (3,) and n1.labels.shape == (3,)
    # hue sequences at phase 0 are pure red: each frame's hue follows the batch's start phase
    for i in range(3):
        f = n1.x[i, (-int(n1.start[i])) % 10]          # the frame at phase 0
        assert f[1:].abs().max() < 1e-6 and f[0].max() > 0.5


def test_eval_sequences_fixed():
    a, b = eval_sequences("rotation", n=8, seq_len=6), eval_sequences("rotation", n=8, seq_len=6)
    assert torch.equal(a.x, b.x) and a.x.shape == (8, 6, 1, 28, 28)


def test_fast_switch(monkeypatch):
    monkeypatch.setenv("TVAE_NB_FAST", "1")
    assert fast_mode() and pick("student", "fast") == "fast"
    monkeypatch.setenv("TVAE_NB_FAST", "0")
    assert not fast_mode() and pick("student", "fast") == "student"


def test_get_device_errors():
    assert get_device(None).type == "cpu"
    with pytest.raises(ValueError, match="device='quantum'"):
        get_device("quantum")


# ---- perspective (out-of-plane wobble) ---------------------------------------------------------------------

def _ray_cast(img, axis_deg, tilt=PERSPECTIVE_TILT, d=PERSPECTIVE_DISTANCE):
    """Independent reference for one image (1, H, W): intersect each pixel's camera ray with the tilted plane."""
    _, H, W = img.shape
    a, phi = math.radians(tilt), math.radians(axis_deg)
    k = torch.tensor([math.cos(phi), math.sin(phi), 0.0], dtype=torch.float64)
    # rotate the plane's axes with scipy-free Rodrigues written out as v cos a + (k x v) sin a + k (k.v)(1 - cos a)
    rot = lambda v: v * math.cos(a) + torch.linalg.cross(k, v) * math.sin(a) + k * (k @ v) * (1 - math.cos(a))
    e1, e2 = rot(torch.tensor([1.0, 0, 0], dtype=torch.float64)), rot(torch.tensor([0, 1.0, 0], dtype=torch.float64))
    n = torch.linalg.cross(e1, e2)
    c = torch.tensor([0, 0, d], dtype=torch.float64)
    grid = torch.empty(H, W, 2, dtype=torch.float64)
    for i in range(H):
        for j in range(W):
            r = torch.tensor([(2 * j + 1) / W - 1, (2 * i + 1) / H - 1, d], dtype=torch.float64)
            p = r * (n @ c) / (n @ r) - c
            grid[i, j] = torch.stack([p @ e1, p @ e2])
    return F.grid_sample(img[None], grid[None].float(), align_corners=False)[0]


def test_perspective_shape_and_range(mnist):
    seq = make_sequences(mnist[1][0][:3], "wobble", 15)
    assert seq.shape == (3, 15, 1, 28, 28) and seq.min() >= 0 and seq.max() <= 1


def test_perspective_cyclic_frame_S_is_frame_0(mnist):
    x = mnist[1][0][:4]
    start = torch.tensor([0, 4, 9, 17])
    seq = make_sequences(x, "wobble", 18, start=start)
    assert torch.equal(seq, make_sequences(x, "wobble", 18, start=start + 18))
    assert torch.allclose(make_sequences(x, "wobble", 18, start=start + 17)[:, 1], seq[:, 0], atol=1e-6)
    # the tilt axis turns through a full circle: phase S's axis angle equals phase 0's plus 360 degrees
    assert torch.allclose(perspective_homography(torch.tensor([0.0])), perspective_homography(torch.tensor([360.0])), atol=1e-5)


def test_perspective_no_frame_is_the_identity_and_frames_differ(mnist):
    x = mnist[1][0][:4]
    seq = make_sequences(x, "wobble", 12, start=0)
    # identity-free: every frame is foreshortened, none equals the flat digit ...
    assert ((seq - x[:, None]).abs().amax((2, 3, 4)) > 0.3).all()
    # ... the ink is roughly conserved (a 35 degree tilt keeps most of the area) ...
    ratio = seq.sum((2, 3, 4)) / x.sum((1, 2, 3))[:, None]
    assert ((ratio > 0.7) & (ratio < 1.3)).all()
    # ... and opposite phases (axis turned by 180 degrees: the other side comes near) look different
    assert ((seq[:, 0] - seq[:, 6]).abs().amax((1, 2, 3)) > 0.3).all()


def test_perspective_batch_equals_per_sample_loop(mnist):
    x = mnist[1][0][:3]
    start = torch.tensor([0, 5, 11])
    S = 12
    seq = make_sequences(x, "wobble", S, start=start)
    for b in range(3):
        for l in (0, 3, 7):
            ref = _ray_cast(x[b], 360.0 / S * ((int(start[b]) + l) % S))
            assert torch.allclose(seq[b, l], ref, atol=1e-4), (b, l)


def test_perspective_foreshortens_along_the_tilt():
    sq = torch.zeros(1, 1, 28, 28); sq[..., 8:20, 8:20] = 1.0
    about_vertical = perspective_warp(sq, torch.tensor([90.0]))[0, 0] > 0.5      # tilts left-right
    about_horizontal = perspective_warp(sq, torch.tensor([0.0]))[0, 0] > 0.5     # tilts up-down
    assert about_vertical.any(0).sum() < about_vertical.any(1).sum()             # narrower than tall
    assert about_horizontal.any(1).sum() < about_horizontal.any(0).sum()         # shorter than wide


def test_perspective_bad_inputs():
    with pytest.raises(ValueError, match="tilt must be"):
        perspective_homography(torch.zeros(2), tilt=95.0)
    with pytest.raises(ValueError, match="distance must"):
        perspective_homography(torch.zeros(2), distance=0.5)
    with pytest.raises(ValueError, match="seq_len must be"):
        make_sequences(torch.rand(2, 1, 28, 28), "wobble", seq_len=1)
    with pytest.raises(ValueError, match="transform must be one of"):
        make_sequences(torch.rand(2, 1, 28, 28), "perspectives")


# ---- the paper code's perspective (spin about the vertical axis + equal in-plane turn + hue) ----------------------
from tvae_nb.data import spin_homography, hue_to_rgb, transform_channels, COLOUR_TRANSFORMS


def _project(u, v, a_deg):
    "Forward model, written out: the plane point (u, v, 0) turned by R_y(a) R_z(a), moved to depth d = sqrt(2)/sin(a), pinhole with focal d."
    a = math.radians(a_deg)
    c, s = math.cos(a), math.sin(a)
    x, y = c * u - s * v, s * u + c * v                   # R_z: in the image plane
    X, Y, Z = c * x, y, s * x                            # R_y: about the vertical axis (z' = 0)
    d = math.sqrt(2) / s
    return d * X / (Z + d), d * Y / (Z + d)


@settings(max_examples=40, deadline=None)
@given(st.floats(-1, 1), st.floats(-1, 1), st.sampled_from([20.0, 40.0, 100.0, 160.0, 200.0, 250.0, 340.0]))
def test_spin_homography_is_the_pinhole_projection(u, v, a):
    H = spin_homography(torch.tensor([a]))[0].double()
    p = H @ torch.tensor([u, v, 1.0], dtype=torch.float64)
    want = _project(u, v, a)
    assert abs(p[0] / p[2] - want[0]) < 1e-4 and abs(p[1] / p[2] - want[1]) < 1e-4


def test_spin_nudges_the_undefined_angles_as_the_papers_code():
    assert torch.allclose(spin_homography(torch.tensor([180.0])), spin_homography(torch.tensor([181.0])))
    assert torch.allclose(spin_homography(torch.tensor([90.0])), spin_homography(torch.tensor([91.0])))
    H0 = spin_homography(torch.tensor([0.0, 360.0]))
    assert torch.allclose(H0 / H0[:, 2:, 2:], torch.eye(3).expand(2, 3, 3), atol=1e-6)   # 0° = 360°: the identity


def test_perspective_sequences_cycle_with_their_own_hue_phase(mnist):
    x = mnist[1][0][::300][:4]
    start, hue0 = torch.tensor([0, 2, 7, 11]), torch.tensor([5, 0, 2, 9])   # not 90° or 270°: edge-on, no ink
    seq = make_sequences(x, "perspective", 12, start=start, hue_start=hue0)
    assert seq.shape == (4, 12, 3, 28, 28)
    assert torch.allclose(seq, make_sequences(x, "perspective", 12, start=start + 12, hue_start=hue0 + 12))
    shape = make_sequences(x, "perspective", 12, start=start).amax(2)          # hue locked to the spin's phase
    assert torch.allclose(seq.amax(2), shape, atol=1e-6)                        # the hue's phase does not move the ink
    ink = seq[:, 0].sum((-2, -1))                                               # (4, 3)
    assert torch.allclose(ink / ink.amax(1, keepdim=True), hue_to_rgb(30.0 * hue0.float()), atol=1e-5)
    s = SequenceSampler(mnist[0][0], mnist[0][1], "perspective", 12, batch_size=64, seed=0).sample()
    hue_phase = torch.stack([hue_to_rgb(torch.tensor(30.0 * k)) for k in range(12)])      # (12, 3)
    f0 = s.x[:, 0].sum((-2, -1)); f0 = f0 / f0.amax(1, keepdim=True)
    drawn = (f0[:, None] - hue_phase[None]).abs().sum(-1).argmin(1)             # each sequence's hue phase at frame 0
    assert (drawn != s.start).float().mean() > 0.5                              # independent of the spin's start


def test_channels_follow_the_colour_transforms():
    assert [transform_channels(t) for t in TRANSFORMS] == [1, 3, 1, 3, 1, 3]
    assert transform_channels("paper") == 3 and set(COLOUR_TRANSFORMS) >= {"hue", "perspective"}
