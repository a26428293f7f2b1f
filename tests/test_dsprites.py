"""Independent tests of tvae_nb.dsprites: the procedural generator, sequences, sampler and the CapCorr metric."""
import math
import pytest
import torch

from tvae_nb.dsprites import (FACTORS, FACTOR_SIZES, SEQ_FACTORS, SHAPES, DSpritesSampler, capcorr, capcorr_by_factor,
                              capcorr_paper, capsule_offsets, centroid, dsprites_sequence_factors, dsprites_sequences,
                              eval_dsprites, factor_period, offset_match, pearson, render_dsprites, IMAGE_SIZE, POS_RANGE)


def state(shape=0, scale=2, orientation=0, x=7, y=7):
    return torch.tensor([[shape, scale, orientation, x, y]])


def test_factor_grid_sizes():
    assert FACTORS == ("shape", "scale", "orientation", "x", "y")
    assert [FACTOR_SIZES[f] for f in FACTORS] == [3, 5, 15, 15, 15]
    assert len(SHAPES) == 3 and math.prod(FACTOR_SIZES.values()) == 50625
    assert factor_period("scale") == 5 and all(factor_period(f) == 15 for f in ("x", "y", "orientation"))


def test_render_shape_dtype_range_and_determinism():
    f = torch.tensor([[s, sc, o, x, y] for s, sc, o, x, y in [(0, 0, 0, 0, 0), (1, 4, 14, 14, 14), (2, 2, 7, 3, 11)]])
    a, b = render_dsprites(f), render_dsprites(f.clone())
    assert a.shape == (3, 1, IMAGE_SIZE, IMAGE_SIZE) and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b)


def test_batched_equals_one_at_a_time():
    f = torch.randint(0, 3, (6, 5))
    whole = render_dsprites(f)
    assert torch.equal(torch.cat([render_dsprites(f[i:i + 1]) for i in range(6)]), whole)


def test_each_shape_non_empty_and_distinct():
    imgs = render_dsprites(torch.cat([state(shape=s, scale=4) for s in range(3)]))
    mass = imgs.sum((1, 2, 3))
    assert (mass > 50).all()
    for i in range(3):
        for j in range(i):
            assert (imgs[i] - imgs[j]).abs().sum() > 20, (SHAPES[i], SHAPES[j])
    # a square of half-size BASE_SIZE*scale covers about (2*half*64)^2 pixels
    from tvae_nb.dsprites import BASE_SIZE
    side = 2 * BASE_SIZE * 1.0 * IMAGE_SIZE
    assert abs(mass[0].item() - side ** 2) < 0.05 * side ** 2


def test_heart_points_down_and_ellipse_is_elongated():
    heart = render_dsprites(state(shape=2, scale=4))[0, 0]
    rows = heart.sum(1)
    top, bottom = rows.nonzero()[[0, -1]].flatten().tolist()
    # wider near the top (the two lobes) than near the bottom (the tip)
    assert heart[top + 3].sum() > heart[bottom - 3].sum()
    ell = render_dsprites(state(shape=1, scale=4))[0, 0] > 0.5
    assert ell.any(0).sum() > 1.5 * ell.any(1).sum()          # radii 1 and 0.5: twice as wide as tall at angle 0


def test_step_in_x_and_y_moves_centroid_by_expected_pixels():
    step = (POS_RANGE[1] - POS_RANGE[0]) * IMAGE_SIZE / 14
    for sh in range(3):
        imgs = render_dsprites(torch.cat([state(shape=sh, x=4), state(shape=sh, x=5),
                                          state(shape=sh, y=7), state(shape=sh, y=8)]))
        c = centroid(imgs)                                            # (4, 2): (x, y) in pixels
        assert abs((c[1, 0] - c[0, 0]).item() - step) < 0.05        # x + 1: right by one step ...
        assert abs((c[1, 1] - c[0, 1]).item()) < 0.05                # ... and not up or down
        assert abs((c[3, 1] - c[2, 1]).item() - step) < 0.05        # y + 1: down by one step
        assert abs((c[3, 0] - c[2, 0]).item()) < 0.05


def test_orientation_keeps_mass_and_rotates():
    imgs = render_dsprites(torch.cat([state(shape=1, orientation=o, scale=4) for o in range(15)]))
    mass = imgs.sum((1, 2, 3))
    assert (mass.max() - mass.min()) / mass.mean() < 0.03
    assert (imgs[0] - imgs[3]).abs().sum() > 50                  # 72 degrees later: different image


def test_sequences_step_one_factor_cyclically():
    start = torch.tensor([[0, 1, 3, 13, 7], [2, 4, 14, 0, 14]])
    for name in SEQ_FACTORS:
        col = FACTORS.index(name)
        b = dsprites_sequences(start, name)
        assert b.x.shape == (2, 15, 1, 64, 64) and b.factors.shape == (2, 15, 5)
        n = FACTOR_SIZES[name]
        assert torch.equal(b.factors[:, :, col], (start[:, None, col] + torch.arange(15)) % n)
        others = [i for i in range(5) if i != col]
        assert (b.factors[:, :, others] == start[:, None, others]).all()
        # cyclic: the frame after the last is frame 0 again
        nxt = dsprites_sequences(b.factors[:, -1], name, 2)
        assert torch.equal(nxt.x[:, 1], b.x[:, 0])


def test_scale_sequences_have_period_5():
    b = dsprites_sequences(torch.tensor([[1, 2, 0, 7, 7]]), "scale")
    assert torch.equal(b.x[:, 5:], b.x[:, :-5])
    assert not torch.equal(b.x[:, 1], b.x[:, 0])


def test_sampler_reproducible_and_resumable():
    a, b = DSpritesSampler(batch_size=5, seed=3), DSpritesSampler(batch_size=5, seed=3)
    ba, bb = a.sample(), b.sample()
    assert torch.equal(ba.x, bb.x) and torch.equal(ba.factors, bb.factors) and torch.equal(ba.factor, bb.factor)
    st = a.state_dict(); n1 = a.sample(); a.load_state_dict(st)
    assert torch.equal(a.sample().x, n1.x)
    assert not torch.equal(DSpritesSampler(batch_size=5, seed=4).sample().x, ba.x)
    only_x = DSpritesSampler(factors="x", batch_size=6, seed=0).sample()
    assert (only_x.factor == FACTORS.index("x")).all()
    ev = eval_dsprites(n=40)
    assert torch.equal(ev.x, eval_dsprites(n=40).x)
    assert set(ev.factor.tolist()) <= {FACTORS.index(f) for f in SEQ_FACTORS}


def _naive_offsets(t):
    B, S, C, D = t.shape
    tc = t - t.mean(-1, keepdim=True)
    out = torch.zeros(B, S, dtype=torch.long)
    for b in range(B):
        for l in range(S):
            votes = [max(range(D), key=lambda k: (float(sum(tc[b, 0, c, d] * tc[b, l, c, (d + k) % D] for d in range(D))), -k))
                     for c in range(C)]
            out[b, l] = max(sorted(set(votes)), key=votes.count)
    return out


def test_offsets_naive_loop_agrees_with_fft():
    t = torch.randn(3, 6, 5, 9, generator=torch.Generator().manual_seed(0))
    assert torch.equal(capsule_offsets(t), _naive_offsets(t))


def test_capcorr_perfect_roll_is_one_and_random_is_near_zero():
    g = torch.Generator().manual_seed(1)
    base = torch.randn(20, 15, 15, generator=g)                                   # (B, C, D)
    rolling = torch.stack([torch.roll(base, l, -1) for l in range(15)], 1)         # (B, S, C, D)
    assert capcorr(rolling) == pytest.approx(1.0)
    assert torch.equal(capsule_offsets(rolling), torch.arange(15).expand(20, 15))
    assert abs(capcorr(torch.randn(300, 15, 15, 15, generator=g))) < 0.05
    # a roll in the wrong direction anti-correlates
    assert capcorr(rolling.flip(1).roll(1, 1)) < -0.9


def test_capcorr_scale_uses_period_5_and_by_factor():
    g = torch.Generator().manual_seed(2)
    base = torch.randn(8, 15, 15, generator=g)
    per5 = torch.stack([torch.roll(base, l % 5, -1) for l in range(15)], 1)      # rolls repeat every 5 frames
    assert capcorr(per5, period=5) == pytest.approx(1.0)
    assert capcorr(per5) < 0.9
    rolling = torch.stack([torch.roll(base, l, -1) for l in range(15)], 1)
    t = torch.cat([rolling, per5])
    factor = torch.tensor([FACTORS.index("x")] * 8 + [FACTORS.index("scale")] * 8)
    res = capcorr_by_factor(t, factor)
    assert set(res) == {"x", "scale"} and res["x"] == pytest.approx(1.0) and res["scale"] == pytest.approx(1.0)


def _random_factors(n, name, seed=0):
    g = torch.Generator().manual_seed(seed)
    start = (torch.rand(n, 5, generator=g) * torch.tensor([FACTOR_SIZES[f] for f in FACTORS])).long()
    return dsprites_sequence_factors(start, torch.full((n,), FACTORS.index(name)))


def _naive_capcorr_paper(t, factors, factor):
    "The paper code's CapCorr written as plainly as possible: loops over sequences, frames, capsules and shifts."
    col = FACTORS.index(factor)
    B, S, C, D = t.shape
    est, truth = [], []
    for b in range(B):
        idx = factors[b, :, col].tolist()
        cands = []
        for i in range(S):
            if idx[i] != 0:
                continue
            votes = []
            for c in range(C):
                corr = [float(sum(t[b, 0, c, n] * t[b, i, c, (n - k) % D] for n in range(D))) for k in range(D)]
                votes.append(max(range(D), key=lambda k: (corr[k], -k)))
            cands.append(max(sorted(set(votes)), key=votes.count))
        if cands:
            est.append(min(cands, key=lambda e: abs(e - idx[0])))
            truth.append(idx[0])
    return pearson(torch.tensor(est), torch.tensor(truth))


@pytest.mark.parametrize("name", SEQ_FACTORS)
def test_capcorr_paper_naive_loop_agrees(name):
    g = torch.Generator().manual_seed(5)
    f = _random_factors(30, name, seed=1)
    t = torch.randn(30, 15, 3, 15, generator=g)
    assert capcorr_paper(t, f, name) == pytest.approx(_naive_capcorr_paper(t, f, name), abs=1e-9)


@pytest.mark.parametrize("name", SEQ_FACTORS)
def test_capcorr_paper_perfect_roll_scores_one(name):
    g = torch.Generator().manual_seed(6)
    f = _random_factors(50, name, seed=2)
    base = torch.randn(50, 4, 15, generator=g)
    rolling = torch.stack([torch.roll(base, l, -1) for l in range(15)], 1)        # +1 per frame
    assert capcorr_paper(rolling, f, name) == pytest.approx(1.0)


def test_capcorr_paper_is_biased_on_noise_and_course_is_not():
    g = torch.Generator().manual_seed(7)
    res = {}
    for name in ("x", "scale"):
        t = torch.randn(3000, 15, 15, 15, generator=g)
        res[name] = (capcorr(t, factor_period(name)), capcorr_paper(t, _random_factors(3000, name, seed=3), name))
    assert abs(res["x"][0]) < 0.03 and abs(res["scale"][0]) < 0.03            # the course's: unbiased
    assert 0.07 < res["x"][1] < 0.17                                            # the paper code's: about 0.12 ...
    assert 0.42 < res["scale"][1] < 0.62                                        # ... and about 0.52 on scale


def test_capcorr_paper_rejects_mismatched_inputs():
    f = _random_factors(4, "x")
    t = torch.randn(4, 15, 3, 15)
    with pytest.raises(ValueError, match="factors must have shape"):
        capcorr_paper(t, f[:3], "x")
    with pytest.raises(ValueError, match="must step by \\+1 per frame"):
        capcorr_paper(t, f, "y")                                                  # y does not step in x sequences
    with pytest.raises(ValueError, match="factor must be one of"):
        capcorr_paper(t, f, "shape")


def test_capcorr_by_factor_rejects_mismatched_factor():
    t = torch.randn(4, 15, 3, 15)
    with pytest.raises(ValueError, match="factor must be an integer tensor of shape \\(4,\\)"):
        capcorr_by_factor(t, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="factor must be an integer tensor"):
        capcorr_by_factor(t, [3, 3, 3, 3])


def test_offset_match_perfect_noise_and_constant():
    g = torch.Generator().manual_seed(8)
    base = torch.randn(10, 5, 15, generator=g)
    rolling = torch.stack([torch.roll(base, l, -1) for l in range(15)], 1)
    assert offset_match(rolling) == (pytest.approx(1.0), pytest.approx(1 / 14))
    per5 = torch.stack([torch.roll(base, l % 5, -1) for l in range(15)], 1)
    assert offset_match(per5, 5)[0] == pytest.approx(1.0)
    m, c = offset_match(torch.randn(400, 15, 15, 15, generator=g))
    assert abs(m - c) < 0.015 and abs(c - 1 / 15) < 0.01
    assert offset_match(torch.ones(3, 15, 2, 15)) == (0.0, 0.0)
    # a roll that is always one step short of the truth: never exact, though Pearson calls it perfect
    short = torch.stack([torch.roll(base, max(l - 1, 0), -1) for l in range(15)], 1)
    assert offset_match(short)[0] < 0.1 and capcorr(short) > 0.99


def test_pearson():
    a = torch.arange(10.)
    assert pearson(a, 2 * a + 1) == pytest.approx(1.0) and pearson(a, -a) == pytest.approx(-1.0)
    assert pearson(a, torch.ones(10)) == 0.0


@pytest.mark.parametrize("call,match", [
    (lambda: render_dsprites(torch.tensor([[3, 0, 0, 0, 0]])), "factors .*'shape'"),
    (lambda: render_dsprites(torch.tensor([[0, 5, 0, 0, 0]])), "factors .*'scale'"),
    (lambda: render_dsprites(torch.tensor([[0, 0, 0, 15, 0]])), "factors .*'x'"),
    (lambda: render_dsprites(torch.tensor([[0, 0, 0, 0, -1]])), "factors .*'y'"),
    (lambda: render_dsprites(torch.zeros(2, 4, dtype=torch.long)), "factors must be"),
    (lambda: render_dsprites(torch.zeros(2, 5)), "factors must hold integer"),
    (lambda: render_dsprites(torch.zeros(2, 5, dtype=torch.long), size=4), "size must be"),
    (lambda: dsprites_sequences(torch.zeros(2, 5, dtype=torch.long), "shape"), "factor must be one of"),
    (lambda: dsprites_sequences(torch.zeros(2, 5, dtype=torch.long), "x", seq_len=1), "seq_len must be"),
    (lambda: dsprites_sequence_factors(torch.zeros(2, 5, dtype=torch.long), torch.tensor([0, 3])), "factor must hold"),
    (lambda: dsprites_sequence_factors(torch.zeros(2, 5, dtype=torch.long), torch.tensor([3])), "factor must be"),
    (lambda: DSpritesSampler(factors=("shape",)), "factors must be"),
    (lambda: DSpritesSampler(batch_size=0), "batch_size must be"),
    (lambda: capcorr(torch.randn(4, 15, 225)), r"t must be .*\(B, S, C, D\)"),
    (lambda: capcorr(torch.randn(4, 15, 5, 5), period=1), "period must be"),
    (lambda: factor_period("colour"), "factor must be one of"),
    (lambda: offset_match(torch.randn(4, 15, 5, 5), period=1), "period must be"),
])
def test_bad_inputs_raise_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
