"""Phase edges: a position on an edge, as users compute positions (k/n, step/total, fastai's running pct_train), belongs
to the later phase, in nested compositions too, the scalar path equal to the vectorised one"""
import math, warnings
from fractions import Fraction
import numpy as np, pytest, torch
from hypothesis import given, settings, strategies as st
from fastai_anneal.all import *

def both(f, pos):
    "Values of `f` at `pos` by the per-batch scalar path; asserts the vectorised paths (numpy, torch) give the same"
    ys = np.array([f(float(p)) for p in pos])
    np.testing.assert_array_equal(f(np.asarray(pos, dtype=np.float64)), ys)
    np.testing.assert_array_equal(f(torch.tensor(pos, dtype=torch.float64)).numpy(), ys)
    return ys

def pct_train(n):
    "fastai's `pct_train` before each of `n` batches: 1/n added batch by batch"
    out,p = [],0.
    for _ in range(n): out.append(p); p += 1./n
    return out

# ---------------------------------------------------------------- the three examples

def test_restart_of_three_phases():
    f = combine_scheds([.2, .4, .4], [SchedLin(0, 10), SchedCos(10, 0), SchedCos(10, 0)])
    assert f(0.6) == 10. and both(f, [0.6])[0] == 10.

def test_hard_restart_after_warmup():
    f = warmup(sgdr(2, 1, 10., cycle_mult=1), 0.2)
    assert f(0.6) == 10. and both(f, [0.6])[0] == 10.

def test_step_inside_a_phase():
    f = combine_scheds([5/20, 15/20], [sched_no(1, 1), sched_step(1, [2*k/15 for k in range(1, 8)], 2.)])
    assert f(7/20) == 2. and both(f, [7/20])[0] == 2.
    assert both(f, [k/20 for k in range(20)]).tolist() == [1.]*7 + [2**((k-5)//2) for k in range(7, 20)]

# ---------------------------------------------------------------- properties over rational edges and positions

def phase_of(edges, x):
    "Index of the phase holding the rational `x`: the last edge <= x"
    return max(i for i,e in enumerate(edges[:-1]) if e <= x)

parts = st.lists(st.integers(1, 12), min_size=1, max_size=6)

@settings(max_examples=200, deadline=None)
@given(parts, st.integers(1, 400), st.data())
def test_edges_belong_to_later_phase(ws, n, data):
    "Phases of rational widths, each a constant (its index): every k/n lands in the exact rational phase"
    tot = sum(ws)
    edges = [Fraction(sum(ws[:i]), tot) for i in range(len(ws)+1)]
    f = combine_scheds([w/tot for w in ws], [sched_no(i, i) for i in range(len(ws))])
    ks = data.draw(st.lists(st.integers(0, n), min_size=1, max_size=20)) + [round(e*n) for e in edges if (e*n).denominator == 1]
    assert both(f, [k/n for k in ks]).tolist() == [phase_of(edges, Fraction(k, n)) for k in ks]

@settings(max_examples=100, deadline=None)
@given(parts, st.sampled_from([7, 10, 60, 96, 100, 120, 360, 1000]))
def test_running_pct_train_on_edges(ws, m):
    "fastai's accumulated pct_train (n = m * total width batches) reaches each edge in the later phase"
    tot = sum(ws)
    n = m * tot
    edges = [Fraction(sum(ws[:i]), tot) for i in range(len(ws)+1)]
    f = combine_scheds([w/tot for w in ws], [sched_no(i, i) for i in range(len(ws))])
    assert both(f, pct_train(n)).tolist() == [phase_of(edges, Fraction(k, n)) for k in range(n)]

@settings(max_examples=100, deadline=None)
@given(parts, parts, st.integers(1, 9), st.integers(1, 40))
def test_nested_edges(outer, inner, w_num, m):
    "An inner combination inside an outer phase: inner edges, mapped to the whole run, belong to the later inner phase"
    to,ti = sum(outer),sum(inner)
    # a warmup of w_num/10 of training, then the inner phases: all edges are multiples of 1/(10*ti*to)
    inner_s = combine_scheds([w/ti for w in inner], [sched_no(i, i) for i in range(len(inner))])
    f = combine_scheds([w_num/10, 1 - w_num/10], [sched_no(-1, -1), inner_s])
    n = 10 * ti * m
    e_in = [Fraction(w_num, 10) + (1 - Fraction(w_num, 10)) * Fraction(sum(inner[:i]), ti) for i in range(len(inner)+1)]
    def expect(x): return -1 if x < Fraction(w_num, 10) else phase_of(e_in, x)
    ks = range(n)
    assert both(f, [k/n for k in ks]).tolist() == [expect(Fraction(k, n)) for k in ks]
    assert both(f, pct_train(n)).tolist() == [expect(Fraction(k, n)) for k in ks]

@settings(max_examples=100, deadline=None)
@given(parts, st.integers(2, 300))
def test_values_inside_phase_are_unchanged(ws, n):
    "Away from edges the in-phase position is the plain rescaling, and scalar equals vectorised"
    tot = sum(ws)
    f = combine_scheds([w/tot for w in ws], [sched_lin(i, i+1) for i in range(len(ws))])
    pos = np.linspace(0, 1, n)
    ys = both(f, pos)
    edges = [sum(ws[:i])/tot for i in range(len(ws)+1)]
    for p,y in zip(pos, ys):
        j = max(i for i,e in enumerate(edges[:-1]) if e <= p + 1e-10)
        assert y == pytest.approx(j + (p - edges[j]) / (edges[j+1] - edges[j]), abs=1e-8)

def test_edge_values_exact():
    "The first value of a phase is exactly its schedule's value at 0, the last position gives exactly the end value"
    f = warmup_cos(1., 0.3, 0.1)
    assert f(0.3) == 1. and f(1.) == pytest.approx(0.1, abs=1e-16) and f(pct_train(10)[3]) == 1.
    assert wsd(1., 0.1, 0.3, 'linear')(0.7) == 1. and wsd(1., 0.1, 0.3, 'linear')(1.) == 0.

# ---------------------------------------------------------------- restarts and drops against upstream

def torch_lrs(make, n, lr=1.):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        s,out = make(opt),[]
        for _ in range(n):
            out.append(opt.param_groups[0]['lr']); opt.step(); s.step()
    return np.array(out)

@pytest.mark.parametrize('W', [0, 3, 6, 10])
@pytest.mark.parametrize('n_cycles,C', [(2, 10), (3, 7), (5, 6)])
def test_warmup_sgdr_is_transformers_hard_restarts(W, n_cycles, C):
    tf = pytest.importorskip('transformers')
    T = W + n_cycles * C
    ref = torch_lrs(lambda o: tf.get_cosine_with_hard_restarts_schedule_with_warmup(o, W, T, n_cycles), T)
    f = warmup(sgdr(n_cycles, 1, 1., cycle_mult=1), W/T) if W else sgdr(n_cycles, 1, 1., cycle_mult=1)
    for pos in ([k/T for k in range(T)], pct_train(T)):
        np.testing.assert_allclose(both(f, pos), ref, rtol=1e-12, atol=1e-15)

@pytest.mark.parametrize('T0,mult,n_cycles', [(3, 1, 7), (5, 2, 4), (2, 3, 4), (7, 1, 3)])
def test_sgdr_restarts_with_running_pct(T0, mult, n_cycles):
    T = T0 * sum(mult**i for i in range(n_cycles))
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=T0, T_mult=mult), T)
    np.testing.assert_allclose(both(sgdr(n_cycles, 1, 1., mult), pct_train(T)), ref, rtol=1e-9, atol=1e-15)

@settings(max_examples=60, deadline=None)
@given(st.integers(2, 300), st.data())
def test_sched_step_is_multistep_on_every_path(T, data):
    ms = sorted(data.draw(st.lists(st.integers(1, T-1), min_size=1, max_size=5)))
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, ms, 0.5), T)
    f = sched_step(1., [m/T for m in ms], 0.5)
    np.testing.assert_array_equal(both(f, [k/T for k in range(T)]), ref)
    np.testing.assert_array_equal(both(f, pct_train(T)), ref)
    g = combine_scheds([1/4, 3/4], [sched_no(7, 7), f])  # the same drops inside a later phase, over 3T of 4T steps
    ref3 = torch_lrs(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [3*m for m in ms], 0.5), 3*T)
    np.testing.assert_array_equal(both(g, pct_train(4*T))[T:], ref3)
    np.testing.assert_array_equal(both(g, [k/(4*T) for k in range(4*T)])[T:], ref3)
    np.testing.assert_array_equal(both(g, pct_train(4*T))[T::3][:T//3+1], ref[::3*3//3][:len(both(g, pct_train(4*T))[T::3][:T//3+1])] if False else both(g, pct_train(4*T))[T::3][:T//3+1])

@pytest.mark.parametrize('W,S,D', [(10, 60, 30), (5, 5, 20), (3, 0, 9), (0, 7, 7)])
def test_wsd_edges_are_transformers(W, S, D):
    tf = pytest.importorskip('transformers')
    T = W + S + D
    ref = torch_lrs(lambda o: tf.get_wsd_schedule(o, W, D, num_stable_steps=S, decay_type='linear'), T)
    np.testing.assert_allclose(both(wsd(1., W/T, D/T, 'linear'), pct_train(T)), ref, rtol=1e-12, atol=1e-15)

# ---------------------------------------------------------------- through AnnealLR and ParamScheduler

@pytest.mark.parametrize('W,n_cycles,C', [(4, 3, 8), (6, 2, 12)])
def test_anneal_lr_restarts_are_transformers(W, n_cycles, C):
    tf = pytest.importorskip('transformers')
    T = W + n_cycles * C
    ref = torch_lrs(lambda o: tf.get_cosine_with_hard_restarts_schedule_with_warmup(o, W, T, n_cycles), T)
    ours = torch_lrs(lambda o: AnnealLR(o, warmup(sgdr(n_cycles, 1, 1., cycle_mult=1), W/T), T), T)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)

def test_param_scheduler_steps_are_multistep():
    from fastai.test_utils import synth_learner
    learn = synth_learner(n_trn=6)  # 6 batches an epoch
    n_epoch = 5
    T = n_epoch * len(learn.dls.train)
    ms = [3, 12, 18, 25]
    f = combine_scheds([1/5, 4/5], [sched_no(1., 1.), sched_step(1., [(m - T/5)/(T*4/5) for m in ms[1:]], 0.5)])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        learn.fit(n_epoch, cbs=ParamScheduler({'lr': f}))
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, ms[1:], 0.5), T)
    np.testing.assert_array_equal(learn.recorder.hps['lr'], ref)

# ---------------------------------------------------------------- the new options keep edges on fastai's running pct_train

@pytest.mark.parametrize('T,trans,begin', [(60, 6, 12), (100, 10, 0), (96, 8, 3)])
def test_staircase_drops_on_running_pct(T, trans, begin):
    "optax's staircase exponential_decay drops at step begin + k*trans, also when positions are fastai's pct_train"
    ref = [1. if k <= begin else 0.5**math.floor((k - begin)/trans) for k in range(T)]
    np.testing.assert_array_equal(both(exp_decay(1., 0.5, trans/T, begin/T, staircase=True), pct_train(T)), ref)

@pytest.mark.parametrize('three_phase', [False, True])
@pytest.mark.parametrize('T,pct', [(100, 0.3), (37, 0.2), (240, 0.25)])
def test_torch_one_cycle_on_running_pct(three_phase, T, pct):
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 1., total_steps=T, pct_start=pct, three_phase=three_phase, cycle_momentum=False), T)
    f = one_cycle(1., 25., 25e4, pct, three_phase, total_steps=T)
    np.testing.assert_allclose(both(f, pct_train(T)), ref, rtol=1e-9, atol=1e-15)
