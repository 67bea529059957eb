"""The schedule library: each shape against its reference (installed torch schedulers, fastai's methods, the published
transformers and timm formulas), JSON configs, bad input, properties, and the Learner methods"""
import json, math, pickle, warnings
import numpy as np, pytest, torch
from fastai_oracle import fs  # fastai's schedule module as it was before fastai_anneal installed its names
from hypothesis import given, settings, strategies as st
from fastai.learner import Learner
from fastai.test_utils import synth_learner
from fastai_oracle import fastai_fit_one_cycle, fastai_fit_flat_cos, fastai_fit_sgdr, fastai_fine_tune
from fastai_anneal.all import *
from fastai_anneal.learner import sgdr_epochs

# ---------------------------------------------------------------- references

def torch_lrs(make, n, lr=1e-2):
    "The lr of torch scheduler `make(opt)` at each of `n` batches, stepped once per batch"
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr, momentum=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        s = make(opt)
        out = []
        for _ in range(n):
            out.append(opt.param_groups[0]['lr'])
            opt.step(); s.step()
    return np.array(out)

def steps(n): return np.arange(n) / n  # our positions for the batches torch steps through

def close(ours, ref, rtol=1e-9): np.testing.assert_allclose(ours, ref, rtol=rtol, atol=1e-15)

# transformers' published lr lambdas (transformers is not installed), times the base lr
def tf_cosine_with_warmup(i, lr, W, T, min_lr_rate=0.):
    if i < W: return lr * i / max(1, W)
    progress = (i - W) / max(1, T - W)
    factor = max(0., 0.5 * (1. + math.cos(math.pi * 0.5 * 2. * progress)))
    return lr * (factor * (1 - min_lr_rate) + min_lr_rate)

def tf_wsd(i, lr, W, S, D, decay, min_lr_ratio=0.):
    if i < W: return lr * max(0., (i / max(1, W)) * (1. - min_lr_ratio) + min_lr_ratio)
    if i < W + S: return lr
    if i < W + S + D:
        progress = (i - W - S) / max(1, D)
        factor = {'linear': 1. - progress, 'cosine': 0.5 * (1. + math.cos(math.pi * 0.5 * 2. * progress)),
                  '1-sqrt': 1. - math.sqrt(progress)}[decay]
        return lr * max(0., factor * (1. - min_lr_ratio) + min_lr_ratio)
    return lr * min_lr_ratio

def tf_inverse_sqrt(i, lr, W, timescale):
    if i < W: return lr * i / max(1, W)
    return lr / math.sqrt((i + timescale - W) / timescale)

def tf_polynomial_with_warmup(i, lr, W, T, lr_end, power):
    if i < W: return lr * i / max(1, W)
    if i > T: return lr_end
    return (lr - lr_end) * (1 - (i - W) / (T - W))**power + lr_end

def tf_linear_with_warmup(i, lr, W, T):
    if i < W: return lr * i / max(1, W)
    return lr * max(0., (T - i) / max(1, T - W))

def timm_cosine(t, lr, t_initial, lr_min, cycle_mul, cycle_decay, cycle_limit, k):
    "timm's CosineLRScheduler._get_lr, the cycle found by counting (timm's `math.log` can round across a restart)"
    i,start,t_i = 0,0,t_initial
    while t >= start + t_i: i,start,t_i = i+1,start+t_i,t_i*cycle_mul
    if i >= cycle_limit: return lr_min
    lr_max = lr * cycle_decay**i
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * (t - start)**k / t_i**k))

# ---------------------------------------------------------------- torch

@pytest.mark.parametrize('n_cycles,mult,lr_min,T0', [(3, 1, 0., 10), (4, 2, 0., 5), (3, 2, 1e-4, 8), (3, 3, 1e-3, 4), (1, 2, 0., 20)])
def test_sgdr_is_cosine_annealing_warm_restarts(n_cycles, mult, lr_min, T0):
    T = T0 * sum(mult**i for i in range(n_cycles))
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=T0, T_mult=mult, eta_min=lr_min), T)
    f = sgdr(n_cycles, 1, 1e-2, mult, lr_min)
    close(f(steps(T)), ref)
    close([f(p) for p in steps(T)], ref)

@pytest.mark.parametrize('mode,gamma', [('triangular', 1.), ('triangular2', 1.), ('exp_range', 0.5), ('exp_range', 0.9)])
@pytest.mark.parametrize('n_cycles,half', [(1, 10), (3, 7), (2, 1)])
def test_cyclic_is_cyclic_lr(mode, gamma, n_cycles, half):
    T = n_cycles * 2 * half
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.CyclicLR(o, 1e-4, 1e-2, step_size_up=half, mode=mode,
                                                                gamma=gamma**(1/(2*half)), cycle_momentum=False), T)
    close(cyclic(1e-4, 1e-2, n_cycles, mode, gamma)(steps(T)), ref)

@pytest.mark.parametrize('milestones,gamma,T', [([3], 0.1, 10), ([10, 30, 31], 0.5, 40), ([5, 5, 8], 0.1, 12)])
def test_sched_step_is_multistep(milestones, gamma, T):
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones, gamma), T)
    close(sched_step(1e-2, [m/T for m in milestones], gamma)(steps(T)), ref)

@pytest.mark.parametrize('power', [1., 2., 0.7])
def test_sched_poly_is_polynomial_lr(power):
    T = 50
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=T, power=power), T)
    close(sched_poly(1e-2, 0., power)(steps(T)), ref, rtol=1e-8)

def onecycle_pos(T, pct, three_phase):
    "Our position for each of torch OneCycleLR's steps: the same fraction of the same phase"
    ends = [pct*T - 1, 2*pct*T - 2, T - 1] if three_phase else [pct*T - 1, T - 1]
    edges = [0., pct, 2*pct, 1.] if three_phase else [0., pct, 1.]
    out = []
    for i in range(T):
        start = 0.
        for j,end in enumerate(ends):
            if i <= end or j == len(ends) - 1:
                out.append(edges[j] + (i - start) / (end - start) * (edges[j+1] - edges[j])); break
            start = end
    return np.array(out)

@pytest.mark.parametrize('three_phase', [True, False])
@pytest.mark.parametrize('anneal', ['cos', 'lin'])
@pytest.mark.parametrize('pct,T', [(0.25, 100), (0.3, 50)])
def test_one_cycle_is_torch_one_cycle(three_phase, anneal, pct, T):
    strategy = {'cos': 'cos', 'lin': 'linear'}[anneal]
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 1e-2, total_steps=T, pct_start=pct, anneal_strategy=strategy,
                                                                  div_factor=20., final_div_factor=1e3, three_phase=three_phase, cycle_momentum=False), T)
    close(one_cycle(1e-2, 20., 20.*1e3, pct, three_phase, anneal)(onecycle_pos(T, pct, three_phase)), ref)

@pytest.mark.parametrize('pct', [0.25, 0.3, 0.9])
def test_one_cycle_is_fastai(pct):
    f,g = one_cycle(3e-3, 10., 1e4, pct),fs.combined_cos(pct, 3e-4, 3e-3, 3e-7)
    p = np.linspace(0, 1, 201)
    np.testing.assert_allclose(f(p), [g(x) for x in p], rtol=1e-5)

# ---------------------------------------------------------------- transformers and timm formulas

@pytest.mark.parametrize('W,T,min_rate', [(10, 100, 0.), (0, 50, 0.), (7, 33, 0.1)])
def test_warmup_cos_is_transformers(W, T, min_rate):
    close(warmup_cos(1e-3, W/T, 1e-3*min_rate)(steps(T)), [tf_cosine_with_warmup(i, 1e-3, W, T, min_rate) for i in range(T)])

@pytest.mark.parametrize('decay', ['linear', 'cosine', '1-sqrt'])
@pytest.mark.parametrize('W,S,D,ratio', [(10, 60, 30, 0.), (5, 0, 20, 0.1), (0, 30, 10, 0.), (8, 12, 0, 0.)])
def test_wsd_is_transformers(decay, W, S, D, ratio):
    T = W + S + D
    close(wsd(1e-3, W/T, D/T, decay, 1e-3*ratio)(steps(T)), [tf_wsd(i, 1e-3, W, S, D, decay, ratio) for i in range(T)])

@pytest.mark.parametrize('W,T,ts', [(10, 100, 10), (20, 60, 5)])
def test_inverse_sqrt_is_transformers(W, T, ts):
    close(warmup(sched_inv_sqrt(1e-3, ts/(T-W)), W/T)(steps(T)), [tf_inverse_sqrt(i, 1e-3, W, ts) for i in range(T)])

@pytest.mark.parametrize('power,lr_end', [(1., 1e-7), (2., 0.), (0.5, 1e-5)])
def test_polynomial_with_warmup_is_transformers(power, lr_end):
    W,T = 10,80
    close(warmup(sched_poly(1e-3, lr_end, power), W/T)(steps(T)), [tf_polynomial_with_warmup(i, 1e-3, W, T, lr_end, power) for i in range(T)])
    close(warmup(sched_lin(1e-3, 0.), W/T)(steps(T)), [tf_linear_with_warmup(i, 1e-3, W, T) for i in range(T)])

@pytest.mark.parametrize('n_cycles,mult,decay,k,lr_min', [(3, 1, 0.5, 1., 1e-5), (3, 2, 0.7, 2., 0.), (2, 3, 1., 0.5, 1e-4)])
def test_sgdr_is_timm_cosine(n_cycles, mult, decay, k, lr_min):
    t0 = 10
    T = t0 * sum(mult**i for i in range(n_cycles))
    ref = [timm_cosine(t, 1e-2, t0, lr_min, mult, decay, n_cycles, k) for t in range(T)]
    close(sgdr(n_cycles, 1, 1e-2, mult, lr_min, decay, k)(steps(T)), ref)

def test_sched_poly_k_is_timm_poly():
    "timm's PolyLRScheduler (one cycle): lr_min + (lr - lr_min) * (1 - t**k / t_i**k)**power"
    T = 40
    close(sched_poly(1e-2, 1e-5, 2., 0.5)(steps(T)), [1e-5 + (1e-2 - 1e-5) * (1 - t**0.5 / T**0.5)**2 for t in range(T)])

# ---------------------------------------------------------------- every shape: configs, pickling, repr, vectorisation

def every_shape():
    return [one_cycle(1e-2), one_cycle([1e-3, 1e-2], 10., 1e3, 0.3, True, 'lin'), sgdr(3, 1, 1e-2), sgdr(4, 2, [1e-3, 1e-2], 1, 1e-5, 0.5, 2.),
            cyclic(1e-4, 1e-2, 3), cyclic([1e-4, 1e-3], 1e-2, 2.5, 'triangular2'), cyclic(1e-4, 1e-2, 2, 'exp_range', 0.5),
            sched_step(1e-2, [0.5, 0.75]), sched_step([1e-3, 1e-2], [0.3], 0.5), sched_poly(1e-2, 0., 2.), sched_poly([1e-2, 1e-1], 1e-5, 1., 0.5),
            sched_inv_sqrt(1e-2, 0.1), sched_inv_sqrt([1e-3, 1e-2], 0.5), warmup(sched_cos(1e-2, 0.), 0.1),
            warmup(sgdr(2, 1, [1e-3, 1e-2], 1), 0.2, 'cos', 1e-6), warmup(sched_exp(1e-2, 1e-4), 0.05, 'exp', 1e-5),
            warmup_cos(1e-3), warmup_cos([1e-4, 1e-3], 0.2, 1e-6), wsd(1e-3, 0.1, 0.2), wsd([1e-4, 1e-3], 0.05, 0.3, '1-sqrt', 1e-5),
            wsd(1e-3, 0., 1., 'linear'),
            combine_scheds([0.3, 0.7], [warmup_cos(1e-3, 0.5), combine_scheds([0.5, 0.5], [sgdr(2, 1, 1e-3, 1), sched_step(1e-4, [0.5])])])]

@pytest.mark.parametrize('f', every_shape(), ids=repr)
def test_json_round_trip(f):
    d = f.to_dict()
    s = json.dumps(d, allow_nan=False)
    g = sched_from_dict(json.loads(s))
    pos = np.linspace(0, 1, 101)
    np.testing.assert_array_equal(g(pos), f(pos))
    assert repr(g) == repr(f) and type(g) is type(f) and g.to_dict() == d

@pytest.mark.parametrize('f', every_shape(), ids=repr)
def test_pickle_repr_vectorised(f):
    pos = np.linspace(0, 1, 101)
    ref = np.array([f(float(p)) for p in pos])
    np.testing.assert_allclose(f(pos), ref, rtol=1e-12, atol=1e-300)
    t = f(torch.tensor(pos, dtype=torch.float32))
    assert t.dtype == torch.float32 and t.shape == ref.shape
    assert f(pos.reshape(1, 101, 1)).shape == (1, 101, 1) + ref.shape[1:]
    for g in (pickle.loads(pickle.dumps(f)), eval(repr(f))):
        np.testing.assert_array_equal(g(pos), f(pos))
        assert repr(g) == repr(f)
    assert np.isfinite(ref).all()

@pytest.mark.parametrize('d', [None, [], {}, {'type': 3}, {'type': 'nope'}, {'type': 'Schedule'}, {'type': 'Annealer'}, {'type': '_Fn', 'fn': 'print'},
                               {'type': 'sgdr', 'n_cycles': 2}, {'type': 'sgdr', 'n_cycles': 2, 'cycle_len': 1, 'lr_max': 'x'},
                               {'type': 'sgdr', 'n_cycles': 2, 'cycle_len': 1, 'lr_max': 1., 'bad': 1},
                               {'type': 'warmup', 'sched': {'type': 'nope'}}, {'type': 'sched_lin', 'start': {'a': 1}, 'end': 1},
                               {'type': 'sched_lin', 'start': float('nan'), 'end': 1.}, {'type': 'CombineScheds', 'pcts': 1., 'scheds': []}])
def test_malformed_configs(d):
    with pytest.raises(ValueError): sched_from_dict(d)

def test_unserialisable():
    with pytest.raises(ValueError, match='plain callable'): warmup(lambda p: 1., 0.1).to_dict()
    with pytest.raises(ValueError, match='cannot be serialised'): Annealer(lambda s,e,p: s, 1., 2.).to_dict()

@pytest.mark.parametrize('make,name', [
    (lambda: one_cycle(float('nan')), 'lr_max'), (lambda: one_cycle(1., div=0), 'div'), (lambda: one_cycle(1., pct_start=2), 'pct_start'),
    (lambda: one_cycle(1., three_phase=1), 'three_phase'), (lambda: one_cycle(1., anneal='exp'), 'anneal'),
    (lambda: sgdr(1.5, 1, 1.), 'n_cycles'), (lambda: sgdr(2, 0, 1.), 'cycle_len'), (lambda: sgdr(2, 1, 1., 0), 'cycle_mult'),
    (lambda: sgdr(2, 1, 1., 2, 'a'), 'lr_min'), (lambda: sgdr(2, 1, 1., cycle_decay=0), 'cycle_decay'), (lambda: sgdr(2, 1, 1., k=-1), 'k'),
    (lambda: cyclic(1, 2, 0), 'n_cycles'), (lambda: cyclic(1, 2, 1, 'exp'), 'mode'), (lambda: cyclic(1, 2, 1, gamma=-1), 'gamma'),
    (lambda: sched_step(1., 0.5), 'pcts'), (lambda: sched_step(1., [0.5, 1.5]), 'pcts[1]'), (lambda: sched_step(1., [0.5, -0.2]), 'pcts[1]'),
    (lambda: sched_poly(1., 0., -1.), 'power'), (lambda: sched_poly(1., 0., 1., 0.), 'k'), (lambda: sched_inv_sqrt(1., 0.), 'timescale'),
    (lambda: warmup(sched_no(1., 1.), 1.), 'pct'), (lambda: warmup(sched_no(1., 1.), 0.1, 'sqrt'), 'anneal'),
    (lambda: warmup(sched_no(1., 1.), 0.1, 'exp'), 'start'), (lambda: warmup(3., 0.1), 'sched'),
    (lambda: warmup_cos(1., 1.), 'pct_warmup'), (lambda: wsd(1., 0.5, 0.6), 'pct_decay'), (lambda: wsd(1., 0.1, 0.1, 'exp'), 'decay'),
    (lambda: wsd(1., -0.1, 0.1), 'pct_warmup'),
])
def test_bad_arguments(make, name):
    with pytest.raises((ValueError, TypeError)) as e: make()
    assert f'`{name}`' in str(e.value)

def test_plots():
    import matplotlib.pyplot as plt
    ax = plot_scheds({'NO': sched_no(2, 1e-2), 'LINEAR': sched_lin(2, 1e-2), 'COS': sched_cos(2, 1e-2), 'EXP': sched_exp(2, 1e-2)}, n=100, return_fig=True).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ['NO', 'LINEAR', 'COS', 'EXP']
    np.testing.assert_allclose(ax.lines[2].get_ydata(), sched_cos(2, 1e-2)(np.linspace(0, 1, 100)))
    assert plot_scheds({'g': sgdr(2, 1, [1e-3, 1e-2])}, ax=ax) is None
    assert len(ax.lines) == 6
    ax = sgdr(3, 1, 1e-2).preview(70, return_fig=True).axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), sgdr(3, 1, 1e-2)(np.arange(70)/70))
    with pytest.raises(ValueError, match='`scheds`'): plot_scheds([])
    with pytest.raises(ValueError, match='`n_steps`'): sched_no(1, 1).preview(0)
    plt.close('all')

# ---------------------------------------------------------------- properties

lrs = st.floats(1e-6, 1.)
@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(1, 3), lrs, st.floats(0., 0.99), st.floats(0.1, 1.), st.floats(0.3, 3.))
def test_sgdr_properties(n, mult, lr, r, decay, k):
    f = sgdr(n, 1, lr, mult, lr*r, decay, k)
    pos = np.linspace(0, 1, 97)
    y = f(pos)
    assert (y <= lr*(1+1e-12)).all() and (y >= min(lr*r, lr*decay**(n-1))*(1-1e-12)).all()  # as timm's: a decayed top may be < lr_min
    np.testing.assert_allclose(y, [f(float(p)) for p in pos], rtol=1e-12)
    np.testing.assert_array_equal(sched_from_dict(json.loads(json.dumps(f.to_dict())))(pos), y)
    starts = np.cumsum([0] + [mult**i for i in range(n)])[:-1] / sum(mult**i for i in range(n))
    np.testing.assert_allclose(f(starts), [lr*decay**i for i in range(n)], rtol=1e-12)

@settings(max_examples=30, deadline=None)
@given(lrs, st.floats(1.01, 100.), st.floats(0.1, 10.), st.sampled_from(['triangular', 'triangular2', 'exp_range']), st.floats(0.1, 1.), st.floats(0., 1.))
def test_cyclic_between_base_and_peak(base, ratio, n, mode, gamma, p):
    f = cyclic(base, base*ratio, n, mode, gamma)
    assert base*(1-1e-12) <= f(p) <= base*ratio*(1+1e-12)
    np.testing.assert_array_equal(sched_from_dict(f.to_dict())(p), f(p))

@settings(max_examples=30, deadline=None)
@given(lrs, st.floats(0., 0.5), st.floats(0., 0.5), st.sampled_from(['linear', 'cosine', '1-sqrt']), st.floats(0., 0.9))
def test_wsd_shape(lr, pw, pd, decay, r):
    f = wsd(lr, pw, pd, decay, lr*r)
    pos = np.linspace(0, 1, 201)
    y = f(pos)
    assert (y <= lr*(1+1e-12)).all() and (y >= lr*(r-1e-12)).all()  # (fastai's `start + pos*(end-start)` rounds a tiny `end` to 0)
    d = np.diff(y)
    w,dk = pos[1:] <= pw, pos[:-1] >= 1 - pd
    assert (d[w] >= -1e-15).all() and (d[dk] <= 1e-15).all()
    stable = (pos > pw) & (pos < 1 - pd)
    np.testing.assert_array_equal(y[stable], lr)

@settings(max_examples=30, deadline=None)
@given(lrs, st.floats(0., 0.9), st.sampled_from(['lin', 'cos', 'exp']), st.floats(0.01, 0.9))
def test_warmup_reaches_the_schedule(lr, pct, anneal, r):
    inner = sched_cos(lr, 0.)
    f = warmup(inner, pct, anneal, lr*r)
    assert f(0.) == pytest.approx(lr*r if pct > 0 else lr) and f(pct) == pytest.approx(lr)
    assert f(pct + (1-pct)/2) == pytest.approx(inner(0.5))

# ---------------------------------------------------------------- Learner methods

def hps(learn, k='lr'): return np.array(learn.recorder.hps[k], dtype=float)

def two_groups(**kwargs):
    learn = synth_learner(n_trn=20, splitter=lambda m: [[m.a], [m.b]], **kwargs)
    learn.create_opt()
    return learn

@pytest.mark.parametrize('kwargs', [{}, dict(lr=3e-3, pct_start=0.5, div_final=1e3)])
def test_fit_flat_cos_is_fastai(kwargs):
    ours,theirs = synth_learner(n_trn=20),synth_learner(n_trn=20)
    ours.fit_flat_cos(3, **kwargs); fastai_fit_flat_cos(theirs, 3, **kwargs)
    np.testing.assert_allclose(hps(ours), hps(theirs), rtol=1e-5)

def test_fit_flat_cos_resumes():
    "fastai's fit_flat_cos ignores `start_epoch`: ours resumes where asked"
    full,resumed = synth_learner(n_trn=20),synth_learner(n_trn=20)
    full.fit_flat_cos(4, 1e-2)
    resumed.fit_flat_cos(4, 1e-2, start_epoch=2)
    n = len(full.dls.train)
    assert len(hps(resumed)) == 2*n
    np.testing.assert_allclose(hps(resumed), hps(full)[2*n:], rtol=1e-12)

# restarts at epoch k/n_epoch: fastai compares the position with float32 phase edges, so where k/n_epoch is not a float32
# (cycle_mult=2: 1/3, 3/7...) its first batch of a cycle stays in the previous one; with cycle_mult=3 (n_epoch 4, 13) they are exact
@pytest.mark.parametrize('n_cycles,cycle_len,cycle_mult,lr', [(2, 1, 3, None), (2, 2, 3, 1e-2), (1, 2, 2, 3e-3)])
def test_fit_sgdr_is_fastai(n_cycles, cycle_len, cycle_mult, lr):
    ours,theirs = synth_learner(n_trn=20),synth_learner(n_trn=20)
    ours.fit_sgdr(n_cycles, cycle_len, lr, cycle_mult); fastai_fit_sgdr(theirs, n_cycles, cycle_len, lr, cycle_mult)
    assert len(hps(ours)) == len(hps(theirs)) == sgdr_epochs(n_cycles, cycle_len, cycle_mult)*len(ours.dls.train)
    np.testing.assert_allclose(hps(ours), hps(theirs), rtol=1e-5, atol=1e-9)  # fastai's float32 positions, near the cycle ends

@pytest.mark.parametrize('cycle_mult', [1, 2])
def test_fit_sgdr_any_mult_and_lr_min(cycle_mult):
    learn = two_groups()
    learn.fit_sgdr(3, 1, slice(1e-4, 1e-2), cycle_mult, lr_min=1e-5)
    n = sgdr_epochs(3, 1, cycle_mult) * len(learn.dls.train)
    g = learn.recorder.group_hps['lr']
    assert g.shape == (n, 2)
    close(g, sgdr(3, 1, [1e-4, 1e-2], cycle_mult, 1e-5)(steps(n)), rtol=1e-9)

def test_fine_tune_is_fastai(monkeypatch):
    ours = two_groups()
    ours.fine_tune(2, 1e-2, freeze_epochs=1)
    theirs = two_groups()
    with monkeypatch.context() as m:  # fastai's fine_tune calls `self.fit_one_cycle`: give it fastai's
        m.setattr(Learner, 'fit_one_cycle', fastai_fit_one_cycle)
        fastai_fine_tune(theirs, 2, 1e-2, freeze_epochs=1)
    for k in ('lr', 'mom'): np.testing.assert_allclose(hps(ours, k), hps(theirs, k), rtol=1e-5)
    assert ours.opt.frozen_idx == theirs.opt.frozen_idx == 0

def test_fine_tune_resumes_after_frozen_epochs():
    full,resumed = two_groups(),two_groups()
    full.fine_tune(2, freeze_epochs=1)
    resumed.fine_tune(2, freeze_epochs=1, start_epoch=2)
    n = len(full.dls.train)
    np.testing.assert_allclose(hps(resumed), hps(full)[n:], rtol=1e-12)

@pytest.mark.parametrize('fit,sched', [
    (lambda l: l.fit_warmup_cos(3, slice(1e-4, 1e-2), pct_warmup=0.2, lr_min=1e-6), warmup_cos([1e-4, 1e-2], 0.2, 1e-6)),
    (lambda l: l.fit_wsd(3, [1e-3, 1e-2], 0.1, 0.3, '1-sqrt', 1e-5), wsd([1e-3, 1e-2], 0.1, 0.3, '1-sqrt', 1e-5)),
])
def test_new_fit_methods(fit, sched):
    learn = two_groups()
    fit(learn)
    g = learn.recorder.group_hps['lr']
    np.testing.assert_allclose(g, sched(steps(len(g))), rtol=1e-9)

def weights(learn): return [p.detach().clone() for p in learn.model.parameters()]

def test_fine_tune_takes_no_lr_max():
    "fine_tune's lrs come from `base_lr` (fastai's signature): `lr_max` is refused, as fastai refuses it"
    with pytest.raises(TypeError, match='lr_max'): two_groups().fine_tune(1, lr_max=1.)

@pytest.mark.parametrize('method,kwargs,name', [
    ('fit_flat_cos', dict(n_epoch=0), 'n_epoch'), ('fit_flat_cos', dict(n_epoch=2, lr=-1.), 'lr'),
    ('fit_flat_cos', dict(n_epoch=2, pct_start=2.), 'pct_start'), ('fit_flat_cos', dict(n_epoch=2, div_final=0), 'div_final'),
    ('fit_flat_cos', dict(n_epoch=2, start_epoch=2), 'start_epoch'), ('fit_flat_cos', dict(n_epoch=2, wd=-1.), 'wd'),
    ('fit_sgdr', dict(n_cycles=0, cycle_len=1), 'n_cycles'), ('fit_sgdr', dict(n_cycles=2, cycle_len=0.5), 'cycle_len'),
    ('fit_sgdr', dict(n_cycles=2, cycle_len=1, cycle_mult=1.5), 'cycle_mult'), ('fit_sgdr', dict(n_cycles=2, cycle_len=1, lr_min=-1.), 'lr_min'),
    ('fit_sgdr', dict(n_cycles=2, cycle_len=1, lr_max=float('nan')), 'lr_max'), ('fit_sgdr', dict(n_cycles=2, cycle_len=1, start_epoch=3), 'start_epoch'),
    ('fine_tune', dict(epochs=0), 'epochs'), ('fine_tune', dict(epochs=1, base_lr=0), 'base_lr'), ('fine_tune', dict(epochs=1, freeze_epochs=-1), 'freeze_epochs'),
    ('fine_tune', dict(epochs=1, lr_mult=0), 'lr_mult'), ('fine_tune', dict(epochs=1, pct_start=-1), 'pct_start'), ('fine_tune', dict(epochs=1, div=0), 'div'),
    ('fine_tune', dict(epochs=1, moms=(0.9,)), 'moms'), ('fine_tune', dict(epochs=1, wd=-1), 'wd'), ('fine_tune', dict(epochs=1, start_epoch=2), 'start_epoch'),
    ('fine_tune', dict(epochs=1, div_final=0), 'div_final'),
    ('fit_warmup_cos', dict(n_epoch=2, pct_warmup=1.), 'pct_warmup'), ('fit_warmup_cos', dict(n_epoch=2, lr_max=slice(0, 1)), 'lr_max.start'),
    ('fit_warmup_cos', dict(n_epoch=2, lr_min=-1), 'lr_min'), ('fit_wsd', dict(n_epoch=2, pct_decay=0.95), 'pct_decay'),
    ('fit_wsd', dict(n_epoch=2, decay='exp'), 'decay'), ('fit_wsd', dict(n_epoch=2, lr_max=[1e-3, 1e-2, 1e-1]), 'lr_max'),
])
def test_bad_args_change_nothing(method, kwargs, name):
    learn = two_groups()
    w,hypers,frozen = weights(learn),[dict(h) for h in learn.opt.hypers],learn.opt.frozen_idx
    with pytest.raises(ValueError) as e: getattr(learn, method)(**kwargs)
    assert f'`{name}`' in str(e.value)
    assert all(torch.equal(a, b) for a,b in zip(w, weights(learn)))
    assert [dict(h) for h in learn.opt.hypers] == hypers and learn.opt.frozen_idx == frozen

def test_one_cycle_is_fit_one_cycle():
    learn = two_groups()
    learn.fit_one_cycle(2, slice(1e-4, 1e-2), pct_start=0.3)
    g = learn.recorder.group_hps['lr']
    np.testing.assert_allclose(g, one_cycle([1e-4, 1e-2], pct_start=0.3)(steps(len(g))), rtol=1e-12)
