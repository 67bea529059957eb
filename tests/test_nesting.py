"""Schedules inside schedules: a duration ('10ba', '2ep') lasts as long wherever it sits (each schedule
resolves its durations over the steps it spans), and every schedule that holds another nests at most
`MAX_DEPTH` deep, with repr, pickle, JSON and evaluation working up to that depth"""
import copy, json, pickle
import numpy as np, pytest, torch
from fastai_anneal.all import *
from fastai_anneal.core import MAX_DEPTH, SchedOp, as_schedule

S = sched_cos(1., 0.1)

def at(s, n): return s(np.arange(n) / n)

def lin_to(v, k, n): return v * np.arange(n)[:k] / k  # a linear warmup from 0 over the first `k` of `n` steps

# Durations inside composites, each against a hand-built expectation

def test_duration_in_a_phase_lasts_its_batches():
    r = combine_scheds([.5, .5], [warmup(S, '10ba'), S]).resolve(100)
    assert r.scheds[0].pct == 10/50
    k = np.arange(100)
    want = np.where(k < 10, k/10 * S(0.), S(np.clip((k - 10) / 40, 0, 1)))
    want[50:] = S((k[50:] - 50) / 50)
    np.testing.assert_allclose(at(r, 100), want, rtol=1e-12, atol=1e-15)

def test_epochs_in_a_later_phase():
    r = combine_scheds(['1ep', None], [sched_no(0., 0.), warmup(S, '2ep')]).resolve(100, steps_per_epoch=10)
    assert r.pcts == [0.1, 0.9] and r.scheds[1].pct == pytest.approx(20/90, rel=1e-15)
    v = at(r, 100)
    np.testing.assert_allclose(v[10:30], np.arange(20)/20 * S(0.), atol=1e-12)  # warms up over steps 10..29
    assert v[30] == pytest.approx(S(0.))

def test_phases_inside_phases():
    inner = combine_scheds(['10ba', None], [sched_lin(0., 1.), sched_no(1., 1.)])
    r = combine_scheds([.5, .5], [sched_no(2., 2.), inner]).resolve(100)
    assert r.scheds[1].pcts == [10/50, 40/50]
    np.testing.assert_allclose(at(r, 100)[50:60], np.arange(10)/10)

@pytest.mark.parametrize('wrap,pct', [(lambda s: s * 2., 0.1), (lambda s: 1. + s, 0.1), (lambda s: -s, 0.1), (lambda s: s / 2., 0.1),
                                      (lambda s: s * sched_lin(1., 2.), 0.1), (lambda s: with_noise(s, 0.5), 0.1),
                                      (lambda s: sched_crop(s, 0.5, 1.), 10/200), (lambda s: sched_crop(s, 0., 4.), 10/25),
                                      (lambda s: warmup(s, '20ba'), 10/80), (lambda s: warmup(s, '20ba', prefix=False), 10/100),
                                      (lambda s: warmup(s, 0.5), 10/50)])
def test_each_composite_resolves_over_its_span(wrap, pct):
    "`sched_crop(s, lo, hi)` runs `s` from lo to hi over the run: all of `s` spans n/(hi-lo) steps"
    r = wrap(warmup(S, '10ba')).resolve(100)
    found = [o for o in _walk(r) if isinstance(o, warmup) and o.sched is S]
    assert len(found) == 1 and found[0].pct == pytest.approx(pct, rel=1e-15)

def _walk(s):
    yield s
    for a in s._args:
        for v in (getattr(s, a) if isinstance(getattr(s, a), list) else [getattr(s, a)]):
            if isinstance(v, Schedule): yield from _walk(v)

def test_crop_keeps_batches():
    "The cropped warmup still lasts 10 batches: half of it falls inside the second half that is kept"
    r = sched_crop(warmup(sched_no(1., 1.), '10ba'), 0.025, 1.025).resolve(100)
    v = at(r, 100)  # all of the warmup spans 100 steps; the crop starts 2.5 steps into it
    np.testing.assert_allclose(v[:8], (np.arange(8) + 2.5)/10, rtol=1e-12)
    assert v[8] == 1.

def test_cyclic_scale_fn_spans_a_cycle():
    c = cyclic(0., 1., 4, scale_fn=warmup(sched_no(1., 1.), '5ba', start=1e-3), scale_mode='iterations')
    assert c.resolve(100).scale_fn.pct == pytest.approx(5/25)

def test_nested_warmups():
    r = warmup(warmup(S, '10ba', start=0.5), '20ba').resolve(100)
    assert r.pct == 0.2 and r.sched.pct == 10/80
    v = at(r, 100)
    np.testing.assert_allclose(v[:20], np.arange(20)/20 * 0.5)
    np.testing.assert_allclose(v[20:30], 0.5 + np.arange(10)/10 * (S(0.) - 0.5))

def test_fractional_phases():
    "A phase of 10/3 steps: '1ba' is 0.3 of it; a phase of 0.3 of 10 steps holds '2ba' but not '3ba'"
    r = combine_scheds([1/3, 2/3], [warmup(sched_no(1., 1.), '1ba'), sched_no(1., 1.)]).resolve(10)
    assert r.scheds[0].pct == pytest.approx(0.3) and at(r, 10)[1] == 1.
    assert combine_scheds([.3, .7], [warmup(S, '2ba'), S]).resolve(10).scheds[0].pct == pytest.approx(2/3)
    with pytest.raises(ValueError, match=r"`pct` must be in \[0, 1\), got 1\.0 .*'3ba'.*its 3 steps"):
        combine_scheds([.3, .7], [warmup(S, '3ba'), S]).resolve(10)

@pytest.mark.parametrize('make,arg', [(lambda: combine_scheds([.5, .5], [warmup(S, '60ba'), S]), "`pct` = '60ba'"),
                                      (lambda: combine_scheds([.5, .5], [S, wsd(1., '2ep', 0.1)]), "`pct_warmup` = '2ep'"),
                                      (lambda: warmup(combine_scheds(['50ba', None], [S, S]), '60ba'), "`pcts\\[0\\]` = '50ba'"),
                                      (lambda: combine_scheds([.5, .5], [combine_scheds(['30ba', '30ba'], [S, S]), S]),
                                       "more than the run")])
def test_phase_too_short(make, arg):
    with pytest.raises(ValueError, match=arg) as e: make().resolve(100, steps_per_epoch=40)
    assert 'steps of a run of 100' in str(e.value)

def test_zero_length_phase():
    r = combine_scheds([1., 0.], [S, warmup(S, '0ba')]).resolve(10)
    assert r.scheds[1].pct == 0.
    with pytest.raises(ValueError, match="'1ba'"): combine_scheds([1., 0.], [S, warmup(S, '1ba')]).resolve(10)

def test_units_kept_through_json_pickle_repr():
    s = combine_scheds([.5, None], [warmup(S * 2., '10ba'), sched_crop(warmup(S, '1ep'), 0., 2.)])
    for g in [sched_from_dict(json.loads(json.dumps(s.to_dict()))), pickle.loads(pickle.dumps(s)), eval(repr(s))]:
        np.testing.assert_array_equal(at(g.resolve(100, 10), 100), at(s.resolve(100, 10), 100))

def test_anneal_lr_and_param_scheduler_resolve_nested():
    s = combine_scheds([.5, .5], [warmup(S, '10ba'), S])
    opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    sch,lrs = AnnealLR(opt, s, 100),[]
    for _ in range(100): lrs.append(opt.param_groups[0]['lr']); opt.step(); sch.step()
    np.testing.assert_allclose(lrs[:11], np.arange(11)/10 * S(0.), atol=1e-15)

# MAX_DEPTH: every schedule that holds another

LEAF = sched_lin(0., 1.)
WRAPS = {'combine': lambda s: combine_scheds([1.], [s]), 'combine2': lambda s: combine_scheds([.5, .5], [LEAF, s]),
         'mul': lambda s: s * 1., 'rmul': lambda s: 1. * s, 'add': lambda s: s + 0., 'sub': lambda s: s - 0.,
         'div': lambda s: s / 1., 'neg': lambda s: -s, 'mul_scheds': lambda s: s * LEAF,
         'crop': lambda s: sched_crop(s, 0., 1.), 'noise': lambda s: with_noise(s, 0.), 'warmup': lambda s: warmup(s, 0.1),
         'warmup_no_prefix': lambda s: warmup(s, 0.1, prefix=False), 'warmup_units': lambda s: warmup(s, '1ba'),
         'cyclic_scale_fn': lambda s: cyclic(0., 1., 1., scale_fn=s)}

def chain(wrap, depth):
    s = LEAF
    for _ in range(depth - 1): s = wrap(s)
    return s

@pytest.mark.parametrize('name', list(WRAPS))
def test_every_composite_round_trips_at_max_depth(name):
    s = chain(WRAPS[name], MAX_DEPTH)
    r = s.resolve(1000, 10)
    pos = np.linspace(0, 1, 7)
    want = r(pos)
    assert np.isfinite(want).all() and isinstance(r(0.5), float)
    np.testing.assert_array_equal(r(torch.tensor(pos)).numpy(), want)
    d = json.loads(json.dumps(s.to_dict()))
    for g in [sched_from_dict(d), pickle.loads(pickle.dumps(s)), copy.deepcopy(s)]:
        assert repr(g) == repr(s) and g.to_dict() == d
        np.testing.assert_array_equal(g.resolve(1000, 10)(pos), want)

@pytest.mark.parametrize('name', list(WRAPS))
def test_every_composite_refuses_one_past_max_depth(name):
    s = chain(WRAPS[name], MAX_DEPTH)
    with pytest.raises(ValueError, match='MAX_DEPTH'): WRAPS[name](s)
    d = {'type': 'CombineScheds', 'pcts': [1.], 'scheds': [s.to_dict()]}
    with pytest.raises(ValueError, match='MAX_DEPTH'): sched_from_dict(d)

@pytest.mark.parametrize('wrap', [lambda s: s * 1., lambda s: sched_crop(s, 0., 1.), lambda s: with_noise(s, 0.5)])
def test_long_chains_refused_not_recursion_error(wrap):
    s = LEAF
    with pytest.raises(ValueError, match='MAX_DEPTH'):
        for _ in range(500): s = wrap(s)

def test_config_one_past_max_depth_of_operators():
    d = LEAF.to_dict()
    for _ in range(MAX_DEPTH): d = {'type': 'SchedOp', 'op': '*', 'a': d, 'b': 1.}
    with pytest.raises(ValueError, match='MAX_DEPTH'): sched_from_dict(d)
    for _ in range(2000): d = {'type': 'SchedOp', 'op': '*', 'a': d, 'b': 1.}
    with pytest.raises(ValueError, match='MAX_DEPTH'): sched_from_dict(d)

def test_custom_schedule_class_deep_chain_refused():
    "A schedule class that stores another without `as_schedule` still gets counted, without recursion"
    class Hold(Schedule):
        _args = 's',
        def __init__(self, s): self.s = s
        def value(self, pos): return 0.
    s = LEAF
    for _ in range(3000): s = Hold(s)
    with pytest.raises(ValueError, match='MAX_DEPTH'): combine_scheds([1.], [s])

# Attacks: cycles, per-group values, tensors, a fit, a resume

def test_warmup_in_every_cycle():
    "SGDR-like cycles of 1, 2 and 4 sevenths, each warming up over 5 batches of its own"
    cyc = combine_scheds([1/7, 2/7, 4/7], [warmup(sched_cos(1., 0.), '5ba')]*3).resolve(70)
    assert [w.pct for w in cyc.scheds] == [pytest.approx(5/10), pytest.approx(5/20), pytest.approx(5/40)]
    v = at(cyc, 70)
    for start in (0, 10, 30):
        np.testing.assert_allclose(v[start:start+6], np.arange(6)/5, atol=1e-12)

def test_per_group_and_tensor_positions():
    g = sched_cos([1., 2.], 0.)
    r = combine_scheds([.5, .5], [warmup(g, '10ba'), g]).resolve(100)
    v = at(r, 100)
    assert v.shape == (100, 2)
    np.testing.assert_allclose(v[:11], np.outer(np.arange(11)/10, [1., 2.]), atol=1e-12)
    np.testing.assert_allclose(r(torch.arange(100, dtype=torch.float64)/100).numpy(), v)

def test_fit_and_resume_with_nested_durations():
    from fastai.test_utils import synth_learner
    from fastai.callback.core import Callback
    class Probe(Callback):
        order = 61
        def before_fit(self): self.lrs = []
        def before_step(self): self.lrs.append(float(self.opt.hypers[-1]['lr']))
    s = combine_scheds([.5, .5], [sched_no(1e-2, 1e-2), warmup(sched_cos(1e-2, 0.), '1ep')])
    runs = []
    for start in (0, 2):
        learn,probe = synth_learner(n_trn=5),Probe()
        n = len(learn.dls.train)
        with learn.no_bar(), learn.no_logging(): learn.fit(4, cbs=[ParamScheduler({'lr': s}), probe], start_epoch=start)
        runs.append(probe.lrs)
    np.testing.assert_allclose(runs[0][2*n:3*n+1], 1e-2 * np.arange(n+1)/n, atol=1e-12)  # the warmup lasts one epoch
    np.testing.assert_allclose(runs[1], runs[0][2*n:], atol=1e-15)
