"""Every upstream scheduler option against its library (torch; transformers and timm when installed, else skipped) or,
for optax (not installed), its published formula; values at the positions k/T of steps k = 0..T-1"""
import json, math, pickle, warnings
import numpy as np, pytest, torch
from hypothesis import given, settings, strategies as st
from fastai_anneal.all import *

def lrs(make, n, lr=1., step=lambda s, i: s.step()):
    "The lr of scheduler `make(opt)` at each of `n` steps"
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr, momentum=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        s,out = make(opt),[]
        for i in range(n):
            out.append(opt.param_groups[0]['lr']); opt.step(); step(s, i+1)
    return np.array(out)

def steps(n): return np.arange(n) / n

def close(f, ref, rtol=1e-9, atol=1e-15):
    "`f` at the positions of `len(ref)` steps equals `ref`, by the vectorised and the per-batch path"
    pos = steps(len(ref))
    np.testing.assert_allclose(f(pos), ref, rtol=rtol, atol=atol)
    np.testing.assert_allclose([f(float(p)) for p in pos], ref, rtol=rtol, atol=atol)

def roundtrip(f):
    "Pickle, JSON and repr give the same schedule"
    pos = np.linspace(0, 1, 37)
    for g in (pickle.loads(pickle.dumps(f)), sched_from_dict(json.loads(json.dumps(f.to_dict()))), eval(repr(f))):
        np.testing.assert_array_equal(g(pos), f(pos))

# ---------------------------------------------------------------- torch CyclicLR

@pytest.mark.parametrize('mode,gamma', [('triangular', 1.), ('triangular2', 1.), ('exp_range', 0.6)])
@pytest.mark.parametrize('up,down,n', [(3, 7, 3), (8, 2, 2), (5, 5, 1), (1, 4, 4)])
def test_cyclic_unequal_steps(mode, gamma, up, down, n):
    c = up + down
    ref = lrs(lambda o: torch.optim.lr_scheduler.CyclicLR(o, 1e-4, 1e-2, step_size_up=up, step_size_down=down, mode=mode,
                                                          gamma=gamma**(1/c), cycle_momentum=False), n*c)
    f = cyclic(1e-4, 1e-2, n, mode, gamma, pct_up=up/c)
    close(f, ref)
    roundtrip(f)

@pytest.mark.parametrize('up,down,n', [(3, 7, 3), (6, 4, 2)])
def test_cyclic_scale_fn(up, down, n):
    c = up + down
    ref = lrs(lambda o: torch.optim.lr_scheduler.CyclicLR(o, 1e-4, 1e-2, step_size_up=up, step_size_down=down, scale_fn=lambda x: 0.8**x,
                                                          scale_mode='cycle', cycle_momentum=False), n*c)
    f = cyclic(1e-4, 1e-2, n, pct_up=up/c, scale_fn=sched_exp(1., 0.8))  # 0.8**cycle
    close(f, ref); roundtrip(f)
    ref = lrs(lambda o: torch.optim.lr_scheduler.CyclicLR(o, 1e-4, 1e-2, step_size_up=up, step_size_down=down, scale_fn=lambda it: 0.97**it,
                                                          scale_mode='iterations', cycle_momentum=False), n*c)
    f = cyclic(1e-4, 1e-2, n, pct_up=up/c, scale_fn=sched_exp(1., 0.97**c), scale_mode='iterations')  # iterations are cycles*c
    close(f, ref); roundtrip(f)
    g = cyclic(1e-4, 1e-2, n, pct_up=up/c, scale_fn=_decay, scale_mode='iterations')  # a module-level function pickles
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(g))(steps(n*c)), g(steps(n*c)))
    with pytest.raises(ValueError, match='cannot be serialised'): g.to_dict()

def _decay(x): return 0.5**x

@pytest.mark.parametrize('make,msg', [
    (lambda: cyclic(0.1, 1., 2, 'exp_range', gamma=1e308), '`gamma`'),
    (lambda: cyclic(0.1, 1., 1100, 'exp_range', gamma=2.), '`gamma`'),
    (lambda: cyclic(0.1, 1., 2, pct_up=1.5), '`pct_up`'),
    (lambda: cyclic(0.1, 1., 2, scale_fn=3.), '`scale_fn`'),
    (lambda: cyclic(0.1, 1., 2, scale_fn=lambda x: 'a'), '`scale_fn`'),
    (lambda: cyclic(0.1, 1., 2, scale_fn=sched_lin([1., 2.], 1.)), '`scale_fn`'),
    (lambda: cyclic(0.1, 1., 2, scale_mode='epoch'), '`scale_mode`'),
])
def test_cyclic_bad_args(make, msg):
    with pytest.raises(ValueError) as e: make()
    assert msg in str(e.value)

def test_cyclic_exp_range_large_gamma_is_finite():
    f = cyclic(0.1, 1., 2, 'exp_range', gamma=1e100)
    assert np.isfinite(f(np.linspace(0, 1, 101))).all()

# ---------------------------------------------------------------- torch ChainedScheduler: products of schedules

@pytest.mark.parametrize('T,ms', [(40, [10, 30]), (33, [5, 20, 21])])
def test_product_is_chained_scheduler(T, ms):
    sch = torch.optim.lr_scheduler
    ref = lrs(lambda o: sch.ChainedScheduler([sch.CosineAnnealingLR(o, T_max=T), sch.MultiStepLR(o, ms, 0.5)]), T)
    f = sched_cos(1., 0.) * sched_step(1., [m/T for m in ms], 0.5)
    close(f, ref, rtol=1e-7, atol=1e-12)  # torch's CosineAnnealingLR is recursive: it rounds a little each step
    ref = lrs(lambda o: sch.ChainedScheduler([sch.ExponentialLR(o, 0.95), sch.StepLR(o, 7, 0.3)]), T)
    g = sched_exp(1., 0.95**T) * sched_step(1., [k*7/T for k in range(1, (T-1)//7 + 1)], 0.3)
    close(g, ref, rtol=1e-12)
    roundtrip(f); roundtrip(g)

def test_arithmetic_groups_and_tensors():
    f = [1e-3, 1e-2] * sched_cos(1., 0.) + 1e-5
    assert f(np.linspace(0, 1, 5)).shape == (5, 2) and f(torch.linspace(0, 1, 5)).shape == (5, 2)
    np.testing.assert_allclose(f(0.5), [5e-4 + 1e-5, 5e-3 + 1e-5])
    roundtrip(f); roundtrip(-f / 2 - sched_lin(0., 1.))

# ---------------------------------------------------------------- torch OneCycleLR step for step

@pytest.mark.parametrize('three_phase', [False, True])
@pytest.mark.parametrize('anneal', ['cos', 'lin'])
@pytest.mark.parametrize('T,pct', [(100, 0.25), (50, 0.3), (37, 0.2), (10, 0.45), (1000, 0.1), (7, 0.3)])
def test_one_cycle_is_torch_step_for_step(three_phase, anneal, T, pct):
    ref = lrs(lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 1e-2, total_steps=T, pct_start=pct, anneal_strategy={'cos': 'cos', 'lin': 'linear'}[anneal],
                                                            div_factor=20., final_div_factor=1e3, three_phase=three_phase, cycle_momentum=False), T)
    f = one_cycle(1e-2, 20., 20.*1e3, pct, three_phase, anneal, total_steps=T)
    close(f, ref)
    assert f(1.) == pytest.approx(ref[-1])
    roundtrip(f)

# ---------------------------------------------------------------- optax (published formulas: optax is not installed)

def optax_cosine_decay(count, init, decay_steps, alpha=0., exponent=1.):
    count = min(count, decay_steps)
    cosine_decay = 0.5 * (1 + math.cos(math.pi * count / decay_steps))
    return init * ((1 - alpha) * cosine_decay**exponent + alpha)

def optax_exponential_decay(count, init, transition_steps, decay_rate, transition_begin=0, staircase=False, end_value=None):
    decreased = count - transition_begin
    p = decreased / transition_steps
    if staircase: p = math.floor(p)
    v = init if decreased <= 0 else init * decay_rate**p
    if end_value is not None: v = (max if decay_rate < 1 else min)(v, end_value)
    return v

def optax_piecewise_linear(count, init, boundaries_and_scales):
    "optax's piecewise_interpolate_schedule('linear', ...)"
    bs,vs = [0],[init]
    for b,s in sorted(boundaries_and_scales.items()): bs.append(b); vs.append(vs[-1]*s)
    for i in range(len(bs) - 1):
        if count <= bs[i+1]: return vs[i] + (vs[i+1] - vs[i]) * (count - bs[i]) / max(bs[i+1] - bs[i], 1e-300)
    return vs[-1]

def optax_linear_onecycle(count, T, peak, pct_start=0.3, pct_final=0.85, div=25., final_div=1e4):
    return optax_piecewise_linear(count, peak/div, {int(pct_start*T): div, int(pct_final*T): 1/div, T: 1/final_div})

def optax_cosine_onecycle(count, T, peak, pct_start=0.3, div=25., final_div=1e4):
    "optax's piecewise_interpolate_schedule('cosine', ...)"
    b1,init = int(pct_start*T),peak/div
    def cos(a, b, p): return a + (b - a) * (1 - math.cos(math.pi * p)) / 2
    if count <= b1: return cos(init, peak, count/b1)
    return cos(peak, peak/(div*final_div), min((count - b1)/(T - b1), 1.))

@pytest.mark.parametrize('alpha,exponent', [(0., 1.), (0.1, 2.), (0.05, 0.5), (0., 3.)])
def test_cosine_decay_exponent_is_optax(alpha, exponent):
    T = 60
    f = cos_decay(2e-3, 2e-3*alpha, exponent=exponent)
    close(f, [optax_cosine_decay(k, 2e-3, T, alpha, exponent) for k in range(T)])
    roundtrip(f)

@pytest.mark.parametrize('staircase', [False, True])
@pytest.mark.parametrize('rate,end', [(0.5, None), (0.5, 1e-3 * 0.3), (1.5, 1e-3 * 4.), (0.9, None)])
@pytest.mark.parametrize('T,trans,begin', [(100, 10, 0), (60, 7, 12), (30, 30, 5)])
def test_exp_decay_is_optax(staircase, rate, end, T, trans, begin):
    f = exp_decay(1e-3, rate, trans/T, begin/T, staircase, end)
    close(f, [optax_exponential_decay(k, 1e-3, trans, rate, begin, staircase, end) for k in range(T)], rtol=1e-12)
    roundtrip(f)

@pytest.mark.parametrize('T,pct_start,pct_final', [(100, 0.3, 0.85), (200, 0.2, 0.5), (40, 0.25, 0.9)])
def test_one_cycle_pct_final_is_optax(T, pct_start, pct_final):
    f = one_cycle(1e-2, 25., 25.*1e4, pct_start, True, 'lin', pct_final)
    close(f, [optax_linear_onecycle(k, T, 1e-2, pct_start, pct_final) for k in range(T)], rtol=1e-12)
    close(one_cycle(1e-2, 25., 25.*1e4, pct_start), [optax_cosine_onecycle(k, T, 1e-2, pct_start) for k in range(T)])
    roundtrip(f)

# ---------------------------------------------------------------- transformers

@pytest.mark.parametrize('num_cycles', [0.3, 0.5, 0.75, 1.5, 2.])
@pytest.mark.parametrize('W,T,min_rate', [(10, 100, 0.), (0, 50, 0.), (7, 33, 0.1)])
def test_cosine_num_cycles_is_transformers(num_cycles, W, T, min_rate):
    tf = pytest.importorskip('transformers')
    if min_rate: ref = lrs(lambda o: tf.get_cosine_with_min_lr_schedule_with_warmup(o, W, T, num_cycles, min_lr_rate=min_rate), T)
    else: ref = lrs(lambda o: tf.get_cosine_schedule_with_warmup(o, W, T, num_cycles), T)
    f = warmup_cos(1., W/T, min_rate, num_cycles)
    close(f, ref, rtol=1e-12, atol=1e-14)
    roundtrip(f)

@pytest.mark.parametrize('num_cycles', [0.3, 0.5, 1.5])
@pytest.mark.parametrize('W,T,min_rate,warmup_rate', [(10, 100, 0.1, None), (5, 40, 0.05, 0.1), (1, 20, 0., None), (0, 30, 0.2, None), (4, 25, 0., 0.)])
def test_cosine_lr_rate_is_transformers(num_cycles, W, T, min_rate, warmup_rate):
    tf = pytest.importorskip('transformers')
    ref = lrs(lambda o: tf.get_cosine_with_min_lr_schedule_with_warmup_lr_rate(o, W, T, num_cycles, min_lr_rate=min_rate, warmup_lr_rate=warmup_rate), T)
    f = warmup_cos_lr_rate(1., T, W, num_cycles, min_rate, warmup_rate)
    close(f, ref, rtol=1e-12, atol=1e-14)
    roundtrip(f)

@pytest.mark.parametrize('warmup_type', ['linear', 'cosine', '1-sqrt'])
@pytest.mark.parametrize('decay,num_cycles', [('cosine', 0.5), ('cosine', 0.3), ('cosine', 1.5), ('linear', 0.5), ('1-sqrt', 0.5)])
@pytest.mark.parametrize('W,S,D,ratio', [(10, 60, 30, 0.), (5, 0, 20, 0.1), (8, 12, 9, 0.)])
def test_wsd_options_are_transformers(warmup_type, decay, num_cycles, W, S, D, ratio):
    tf = pytest.importorskip('transformers')
    T = W + S + D
    ref = lrs(lambda o: tf.get_wsd_schedule(o, W, D, num_stable_steps=S, warmup_type=warmup_type, decay_type=decay,
                                            min_lr_ratio=ratio, num_cycles=num_cycles), T)
    f = wsd(1., W/T, D/T, decay, ratio, warmup_type, num_cycles)
    close(f, ref, rtol=1e-12, atol=1e-14)
    roundtrip(f)

# ---------------------------------------------------------------- timm

def timm_lrs(make, n):
    "timm scheduler `make(opt)` stepped per epoch: the lr at epochs 0..n-1"
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.)
    s,out = make(opt),[]
    for t in range(n):
        s.step(t); out.append(opt.param_groups[0]['lr'])
    return np.array(out)

@pytest.mark.parametrize('prefix', [True, False])
@pytest.mark.parametrize('W,T,init', [(5, 50, 1e-3), (10, 30, 0.), (1, 12, 0.1)])
def test_cosine_warmup_overlay_is_timm(prefix, W, T, init):
    cs = pytest.importorskip('timm.scheduler')
    n = W + T if prefix else T
    ref = timm_lrs(lambda o: cs.CosineLRScheduler(o, t_initial=T, lr_min=1e-4, warmup_t=W, warmup_lr_init=init, warmup_prefix=prefix), n)
    f = warmup(sgdr(1, 1, 1., lr_min=1e-4), W/n, start=init, prefix=prefix)
    close(f, ref, rtol=1e-12)
    roundtrip(f)

@pytest.mark.parametrize('prefix', [True, False])
@pytest.mark.parametrize('lb,ub,W,T', [(-7., 3., 0, 40), (-6., 2., 4, 30), (-3., 5., 6, 25)])
def test_tanh_is_timm(prefix, lb, ub, W, T):
    cs = pytest.importorskip('timm.scheduler')
    n = W + T if prefix else T
    ref = timm_lrs(lambda o: cs.TanhLRScheduler(o, t_initial=T, lb=lb, ub=ub, lr_min=1e-5, warmup_t=W, warmup_lr_init=1e-4,
                                                warmup_prefix=prefix, cycle_limit=1), n)
    f = sched_tanh(1., 1e-5, lb, ub)
    if W: f = warmup(f, W/n, start=1e-4, prefix=prefix, end=1. if prefix else f(W/n))  # timm's tanh warms up to lr_max, or overlaid to the value where it ends
    close(f, ref, rtol=1e-12)
    roundtrip(f)

@pytest.mark.parametrize('noise_type', ['normal', 'uniform'])
@pytest.mark.parametrize('rng', [20, (10, 30), [0, 40]])
def test_noise_is_where_timm_puts_it(noise_type, rng):
    cs = pytest.importorskip('timm.scheduler')
    T,pct,std = 40,0.2,0.5
    def make(o):
        s = cs.CosineLRScheduler(o, t_initial=T, lr_min=1e-4, noise_range_t=rng, noise_pct=pct, noise_std=std, noise_seed=7)
        s.noise_type = noise_type  # the base Scheduler's option, which CosineLRScheduler does not pass on
        return s
    ref = timm_lrs(make, T)
    clean = timm_lrs(lambda o: cs.CosineLRScheduler(o, t_initial=T, lr_min=1e-4), T)
    base = sgdr(1, 1, 1., lr_min=1e-4)
    f = with_noise(base, [r/T for r in rng] if isinstance(rng, (tuple, list)) else rng/T, pct, std, 7, noise_type, noise_steps=T)
    y = f(steps(T))
    np.testing.assert_array_equal(y != base(steps(T)), ref != clean)  # noise exactly where timm adds it
    assert (abs(y/base(steps(T)) - 1) < pct).all() and (abs(ref/clean - 1) < pct).all()
    np.testing.assert_array_equal([f(float(p)) for p in steps(T)], y)
    roundtrip(f)

def test_noise_is_a_pure_function_of_position():
    f = with_noise(sched_cos(1., 0.), 0., 0.5, 0.2, 3, noise_steps=4000)
    pos = np.linspace(0, 1, 4001)
    y = f(pos)
    np.testing.assert_array_equal(f(pos[1234:]), y[1234:])  # resumed half way: the same values
    np.testing.assert_array_equal(f(torch.tensor(pos)).numpy(), y)
    r = y[:-1] / sched_cos(1., 0.)(pos[:-1]) - 1
    assert abs(r).max() < 0.5 and abs(r.mean()) < 0.02 and 0.17 < r.std() < 0.2  # N(0, 0.2) truncated at +-0.5: std ~0.19
    u = with_noise(sched_no(1., 1.), 0., 0.5, noise_type='uniform', noise_steps=4000)(pos) - 1
    assert abs(u.mean()) < 0.03 and abs(u.std() - 0.5/math.sqrt(3)) < 0.02
    assert not np.array_equal(with_noise(sched_cos(1., 0.), 0., 0.5, 0.2, 4, noise_steps=4000)(pos), y)
    n,acc,ps = 600,0.,[]
    for _ in range(n): ps.append(acc); acc += 1/n  # fastai's running pct_train misses k/n by a few ulps: the same noise
    g = with_noise(sched_no(1., 1.), 0., 0.5, noise_steps=n)
    np.testing.assert_array_equal(g(np.array(ps)), g(np.arange(n)/n))
    assert len(set(g(np.arange(n)/n))) == n

# ---------------------------------------------------------------- the literature

def test_rex_and_straight_to_zero():
    T = 50
    close(sched_rex(1e-3, 0.), [1e-3 * (1 - k/T) / (0.5 + 0.5*(1 - k/T)) for k in range(T)], rtol=1e-12)
    tf = pytest.importorskip('transformers')
    ref = lrs(lambda o: tf.get_linear_schedule_with_warmup(o, 5, T), T, lr=1e-3)
    close(warmup(sched_lin(1e-3, 0.), 5/T), ref, rtol=1e-12)
    roundtrip(sched_rex([1e-3, 1e-2], 0.))

@pytest.mark.parametrize('make', [lambda: sched_tanh(1., 0., 3., math.inf), lambda: exp_decay(1., -0.5, 0.1), lambda: exp_decay(1., 0.5, 0.),
                                  lambda: cos_decay(1., 0., -0.5), lambda: warmup_cos_lr_rate(1., 0, 0), lambda: with_noise(sched_lin(0, 1), 0., noise_pct=0),
                                  lambda: with_noise(sched_lin(0, 1), 0., noise_type='gauss'), lambda: one_cycle(1., total_steps=0),
                                  lambda: warmup(sched_lin(0, 1), 0.1, prefix=1), lambda: sched_crop(sched_lin(0, 1), 0.5, 0.5)])
def test_bad_args(make):
    with pytest.raises((ValueError, TypeError)): make()

# ---------------------------------------------------------------- cutting a schedule on a plateau

from fastai.test_utils import synth_learner
from fastai_oracle import fs  # fastai's own objects, frozen before ours are installed under its names

@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(0., 10.), min_size=1, max_size=40), st.sampled_from(['min', 'max']), st.sampled_from(['rel', 'abs']),
       st.integers(0, 3), st.integers(0, 3), st.sampled_from([0., 1e-4, 0.1]), st.sampled_from([0.1, 0.5]))
def test_plateau_decisions_are_torch(vals, mode, tmode, patience, cooldown, threshold, factor):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode, factor, patience, threshold, tmode, cooldown, eps=0.)
    cb = ScaleOnPlateau('valid_loss', mode, factor, patience, threshold, tmode, cooldown)
    for v in vals:
        ref.step(v); cb.step(v)
        assert cb.scale == pytest.approx(opt.param_groups[0]['lr'], rel=1e-12)

def plateau_fit(learn, n, cbs, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        learn.fit(n, cbs=cbs, **kw)

@pytest.mark.parametrize('fastai_ps', [False, True])
def test_plateau_scales_any_schedule(fastai_ps):
    learn = synth_learner(n_trn=5)
    s = one_cycle(1e-2)
    ps = fs.ParamScheduler({'lr': s}) if fastai_ps else ParamScheduler({'lr': s})
    cb = ScaleOnPlateau(patience=1, threshold=10., factor=0.3, min_lr=1e-4)  # no epoch improves enough: a cut every 2 epochs
    plateau_fit(learn, 6, [ps, cb])
    n = len(learn.recorder.lrs)
    want = [max(s(i/n)*k, min(s(i/n), 1e-4)) for i,k in enumerate(cb.scales)]
    np.testing.assert_allclose(learn.recorder.lrs, want, rtol=1e-6)
    np.testing.assert_allclose(learn.recorder.hps['lr'], want, rtol=1e-6)
    assert sorted(set(cb.scales), reverse=True) == pytest.approx([1., 0.3, 0.09])

def test_plateau_cuts_an_unscheduled_lr_once():
    learn = synth_learner(n_trn=5, lr=1e-2)
    cb = ScaleOnPlateau(patience=0, threshold=10., factor=0.5)
    plateau_fit(learn, 3, [cb])
    # torch's rule: with threshold=10 no value is better than the initial best (inf), the first epoch's included
    assert learn.opt.hypers[-1]['lr'] == pytest.approx(1e-2 * 0.125) and cb.scale == 0.125

def test_plateau_resumes():
    def cbs(cb): return [ParamScheduler({'lr': sched_cos(1e-2, 1e-3)}), cb]
    full = ScaleOnPlateau(patience=0, threshold=10., factor=0.5)
    learn = synth_learner(n_trn=5)
    plateau_fit(learn, 3, cbs(full))
    first = ScaleOnPlateau(patience=0, threshold=10., factor=0.5)
    plateau_fit(synth_learner(n_trn=5), 2, cbs(first))  # interrupted after 2 epochs; its state saved
    again = ScaleOnPlateau(patience=0, threshold=10., factor=0.5, reset_on_fit=False)
    again.load_state_dict(first.state_dict())
    learn2 = synth_learner(n_trn=5)
    plateau_fit(learn2, 3, cbs(again), start_epoch=2)  # epochs 0, 1 skipped, not judged
    n = len(full.scales)
    assert again.scales == full.scales[-len(again.scales):] == [0.25]*(n//3) and again.scale == full.scale == 0.125
    np.testing.assert_allclose(learn2.recorder.hps['lr'], learn.recorder.hps['lr'][-len(again.scales):])

def test_plateau_bad_args():
    for kw,name in [(dict(factor=1.), '`factor`'), (dict(mode='down'), '`mode`'), (dict(patience=-1), '`patience`'),
                    (dict(threshold_mode='x'), '`threshold_mode`'), (dict(names='lr'), '`names`'), (dict(min_lr=-1.), '`min_lr`')]:
        with pytest.raises(ValueError, match=name): ScaleOnPlateau(**kw)
    learn = synth_learner(n_trn=5)
    with pytest.raises(ValueError, match='`monitor`'): learn.fit(1, cbs=ScaleOnPlateau('accuracy'))
    with pytest.raises(ValueError, match="'lrr'"): learn.fit(1, cbs=ScaleOnPlateau(names=['lrr']))
    assert not any(isinstance(c, ScaleOnPlateau) for c in learn.cbs)
    learn.fit(1)

# ---------------------------------------------------------------- per-group values, for every new shape

G = [1e-3, 1e-2]
PER_GROUP = [  # each makes a schedule from its value argument: a per-group list, or one group's number
    lambda v: cyclic(v, 0.1, 3, pct_up=0.3, scale_fn=sched_exp(1., 0.8)), lambda v: cos_decay(v, 1e-5, 1.5, 2.),
    lambda v: exp_decay(v, 0.5, 0.2, 0.1, True, 2e-4), lambda v: sched_tanh(v, 1e-5), lambda v: warmup_cos_lr_rate(v, 20, 5, 0.75, 1e-5, 0.1),
    lambda v: one_cycle(v, 10., 100., 0.3, True, 'lin', 0.7), lambda v: one_cycle(v, total_steps=13),
    lambda v: warmup(sched_tanh(v, 0.), 0.2, prefix=False), lambda v: wsd(v, 0.1, 0.3, 'cosine', 1e-5, '1-sqrt', 1.5),
    lambda v: with_noise(sched_cos(v, 0.), 0.2, 0.3, noise_steps=17), lambda v: sched_rex(v, 0.),
    lambda v: sched_cos(v, 0.) * sched_step(1., [0.5]) + 1e-6,
]

@pytest.mark.parametrize('i', range(len(PER_GROUP)))
def test_per_group(i):
    make = PER_GROUP[i]
    f = make(G)
    pos = np.linspace(0, 1, 41)
    y = f(pos)
    assert y.shape == (41, 2) and f.ngroups == 2
    np.testing.assert_allclose(np.array([f(float(p)) for p in pos]), y, rtol=1e-12)
    for g,v in enumerate(G): np.testing.assert_allclose(y[:, g], make(v)(pos), rtol=1e-12, atol=1e-18)
    roundtrip(f)
