"""Open-ended training: `Learner.cooldown`, `CooldownOnPlateau` (timed against fastai's EarlyStoppingCallback on the same
sequence of monitored values) and `Learner.fit_budget` (with an injected clock)"""
from functools import partial
import numpy as np, pytest, torch
from hypothesis import given, settings, strategies as st
from torch import nn
from fastai.callback.core import Callback
from fastai.callback.tracker import EarlyStoppingCallback
from fastai.learner import Learner
from fastai.losses import MSELossFlat
from fastai.metrics import ValueMetric
from fastai.optimizer import SGD
from fastai.test_utils import synth_dbunch, synth_learner
from fastai_anneal.all import *
from fastai_anneal.core import duration_steps

def weights(learn): return [p.detach().clone() for p in learn.model.parameters()]
def same(a, b): return all(torch.equal(x, y) for x,y in zip(a, b))
def mlp(): return nn.Sequential(nn.Linear(1, 8), nn.Linear(8, 8), nn.Linear(8, 1))
def groups_learner(n_trn=5, **kw):
    "3 parameter groups, SGD with momentum"
    return Learner(synth_dbunch(n_train=n_trn), mlp(), loss_func=MSELossFlat(), opt_func=partial(SGD, mom=0.9),
                   splitter=lambda m: [list(m[i].parameters()) for i in range(3)], **kw)

class Probe(Callback):
    "Every group's lr and mom just before each optimizer step"
    order = 70
    def before_fit(self): self.lrs,self.momentums = [],[]
    def before_step(self):
        self.lrs.append([float(h['lr']) for h in self.opt.hypers])
        self.momentums.append([float(h.get('mom', np.nan)) for h in self.opt.hypers])

def quiet(learn, f, *args, **kw):
    with learn.no_bar(), learn.no_logging(): return f(*args, **kw)

DECAY = {'linear': lambda p: 1-p, 'cosine': lambda p: (1+np.cos(np.pi*p))/2, '1-sqrt': lambda p: 1-np.sqrt(p)}

# Learner.cooldown

@pytest.mark.parametrize('decay', list(DECAY))
def test_cooldown_shapes_groups_lr_min(decay):
    learn = groups_learner()
    quiet(learn, learn.fit, 1, slice(1e-3, 1e-1))
    lr0 = np.array([float(h['lr']) for h in learn.opt.hypers])
    assert len(set(lr0)) == 3
    lr_min = [1e-5, 1e-4, 1e-3]
    probe = Probe()
    quiet(learn, learn.cooldown, 2, lr_min=lr_min, decay=decay, cbs=probe)
    n = 2*len(learn.dls.train)
    p = np.arange(n)/n
    want = np.array(lr_min) + (lr0 - np.array(lr_min)) * DECAY[decay](p)[:, None]
    np.testing.assert_allclose(probe.lrs, want, rtol=1e-12)
    np.testing.assert_allclose(probe.lrs[0], lr0)  # continuity: the first batch runs at the current lr
    np.testing.assert_allclose(learn.recorder.group_hps['lr'], want, rtol=1e-12)

def test_cooldown_to_zero_by_default_and_mom():
    learn = groups_learner()
    quiet(learn, learn.fit, 1, 1e-2)
    probe = Probe()
    quiet(learn, learn.cooldown, 1, cbs=probe)
    n = len(learn.dls.train)
    np.testing.assert_allclose(np.array(probe.lrs)[:, 0], 1e-2*(1 - np.sqrt(np.arange(n)/n)))
    np.testing.assert_allclose(probe.momentums, 0.9)  # momentum left alone
    quiet(learn, learn.cooldown, 1, lr_start=1e-2, mom=0.8, cbs=probe)
    np.testing.assert_allclose(probe.momentums, 0.8)
    quiet(learn, learn.cooldown, 1, lr_start=1e-2, mom=(0.85, 0.95), decay='linear', cbs=probe)
    np.testing.assert_allclose(np.array(probe.momentums)[:, 0], 0.85 + 0.1*np.arange(n)/n)

def test_cooldown_after_wsd_stable_phase_is_continuous():
    learn = synth_learner(n_trn=5)
    quiet(learn, learn.fit_wsd, 2, 3e-2, pct_warmup='2ba', pct_decay=0.)
    last = learn.recorder.hps['lr'][-1]
    quiet(learn, learn.cooldown, 1, decay='cosine')
    lrs = learn.recorder.hps['lr']
    assert lrs[0] == last == 3e-2 and lrs[-1] < lrs[0]

def test_cooldown_resume():
    full,res = synth_learner(n_trn=5),synth_learner(n_trn=5)
    for l in (full, res): quiet(l, l.fit, 1, 2e-2)
    quiet(full, full.cooldown, 4, decay='cosine', lr_min=1e-4)
    with pytest.raises(ValueError, match='lr_start'): res.cooldown(4, start_epoch=2)
    quiet(res, res.cooldown, 4, decay='cosine', lr_min=1e-4, lr_start=2e-2, start_epoch=2)
    np.testing.assert_allclose(res.recorder.hps['lr'], full.recorder.hps['lr'][10:])

@pytest.mark.parametrize('kw,match', [(dict(n_epoch=0), 'n_epoch'), (dict(decay='sqrt'), 'decay'), (dict(lr_min=-1e-3), 'lr_min'),
                                      (dict(lr_min=1.), 'lr_min'), (dict(lr_min=[0., 0.]), 'lr_min'), (dict(lr_start=0.), 'lr_start'),
                                      (dict(lr_min=float('nan')), 'lr_min'), (dict(mom=(0.9, 0.8, 0.7)), 'mom'), (dict(start_epoch=3), 'start_epoch')])
def test_cooldown_bad_input(kw, match):
    learn = synth_learner(n_trn=5)
    quiet(learn, learn.fit, 1, 1e-2)
    w = weights(learn)
    with pytest.raises(ValueError, match=match): learn.cooldown(**{'n_epoch': 2, **kw})
    assert same(w, weights(learn)) and not any(isinstance(cb, ParamScheduler) for cb in learn.cbs)

# CooldownOnPlateau against EarlyStoppingCallback

class ES(EarlyStoppingCallback):
    "fastai's early stopping, noting the epoch it stopped at"
    def before_fit(self): self.stopped = None; super().before_fit()
    def after_cancel_fit(self): self.stopped = self.epoch

def metric_learner(seq, n_trn=2):
    learn = synth_learner(n_trn=n_trn)
    learn.metrics = [ValueMetric(lambda: seq[learn.epoch], 'score')]
    return learn

def run_both(seq, n_epoch, duration, **kw):
    es,cd = metric_learner(seq),metric_learner(seq)
    e,c = ES('score', **kw),CooldownOnPlateau('score', duration=duration, **kw)
    quiet(es, es.fit, n_epoch, 1e-2, cbs=e)
    quiet(cd, cd.fit, n_epoch, 1e-2, cbs=c)
    return es,e,cd,c

@settings(max_examples=30, deadline=None)
@given(seq=st.lists(st.sampled_from([1., 2., 2.5, 3.]), min_size=6, max_size=6), patience=st.integers(0, 3),
       min_delta=st.sampled_from([0., 0.6]), comp=st.sampled_from([None, np.greater]), duration=st.sampled_from(['1ep', '3ba', '2ep', '0ba', 0.25]))
def test_plateau_timing_matches_early_stopping(seq, patience, min_delta, comp, duration):
    n_epoch = 6
    es,e,cd,c = run_both(seq, n_epoch, duration, patience=patience, min_delta=min_delta, comp=comp)
    n_iter = len(cd.dls.train)
    assert c.plateau_epoch == e.stopped  # found at the end of the epoch where early stopping stops
    if e.stopped is None:
        assert len(cd.recorder.values) == n_epoch and c.lrs == []
        return
    k = min(duration_steps('duration', duration, n_epoch*n_iter, n_iter), (n_epoch - e.stopped - 1)*n_iter)
    assert len(c.lrs) == k  # the cooldown's batches
    assert len(cd.recorder.values) == e.stopped + 1 + -(-k//n_iter)  # the fit stops after the cooldown's last epoch
    assert all(len(v) == 3 for v in cd.recorder.values)  # a cut epoch logs all its columns
    if k: np.testing.assert_allclose(np.array(c.lrs)[:, 0], 1e-2*(1 - np.sqrt(np.arange(k)/k)))

def test_plateau_cooldown_on_a_scheduler_and_the_record():
    seq = [3., 2., 2., 2., 2., 2.]
    learn = groups_learner(n_trn=4, metrics=[ValueMetric(lambda: seq[learn.epoch], 'score_loss')])
    cb,probe = CooldownOnPlateau('score_loss', duration='6ba', decay='linear', lr_min=[0., 1e-4, 1e-3]),Probe()
    quiet(learn, learn.fit_wsd, 6, [1e-2, 2e-2, 3e-2], pct_warmup=0.5, pct_decay=0., cbs=[cb, probe])
    assert cb.plateau_epoch == 2
    g = learn.recorder.group_hps['lr']
    np.testing.assert_allclose(g, probe.lrs)  # the record shows what ran
    assert len(g) == 3*4 + 6
    lr0 = g[11]  # the scheduler's last lr, at the plateau
    want = np.array([0., 1e-4, 1e-3]) + (lr0 - np.array([0., 1e-4, 1e-3])) * (1 - np.arange(6)/6)[:, None]
    np.testing.assert_allclose(g[12:], want)
    np.testing.assert_allclose(learn.recorder.hps['lr'], g[:, -1])
    assert len(learn.recorder.values) == 5 and all(len(v) == 3 for v in learn.recorder.values)

def test_plateau_cooldown_cut_at_the_end_of_the_fit():
    seq = [3., 3., 3.]
    learn = metric_learner(seq)
    cb = CooldownOnPlateau('score', duration='3ep')
    quiet(learn, learn.fit, 3, 1e-2, cbs=cb)
    assert cb.plateau_epoch == 1 and len(cb.lrs) == len(learn.dls.train) and len(learn.recorder.values) == 3

@pytest.mark.parametrize('kw,match', [(dict(duration='1.5ep'), 'duration'), (dict(duration=2.), 'duration'), (dict(decay='exp'), 'decay'),
                                      (dict(lr_min=-1.), 'lr_min'), (dict(patience=-1), 'patience'), (dict(patience=1.5), 'patience'),
                                      (dict(monitor=3), 'monitor')])
def test_plateau_bad_args(kw, match):
    with pytest.raises((ValueError, TypeError), match=match): CooldownOnPlateau(**kw)

def test_plateau_refusals_at_fit_leave_the_learner_usable():
    learn = synth_learner(n_trn=2)
    w = weights(learn)
    for cb,match in [(CooldownOnPlateau('accuracy'), 'monitor'), (CooldownOnPlateau(duration='7ep'), "'7ep'")]:
        with pytest.raises(ValueError, match=match): quiet(learn, learn.fit, 3, 1e-2, cbs=cb)
        assert same(w, weights(learn)) and not any(isinstance(c, CooldownOnPlateau) for c in learn.cbs)

# fit_budget with an injected clock

def test_fit_budget_linear_to_zero_then_validates():
    learn = synth_learner(n_trn=5)
    probe = Probe()
    quiet(learn, learn.fit_budget, 12., 1e-2, clock=lambda: float(learn.train_iter), cbs=probe)  # one second a batch
    np.testing.assert_allclose(np.array(probe.lrs)[:, 0], 1e-2*(1 - np.arange(12)/12))
    np.testing.assert_allclose(learn.recorder.hps['lr'], np.array(probe.lrs)[:, 0])
    assert len(learn.recorder.values) == 3 and all(len(v) == 2 for v in learn.recorder.values)  # the cut epoch validated

def test_fit_budget_per_group_and_sched():
    learn = groups_learner()
    probe = Probe()
    quiet(learn, learn.fit_budget, 5., [1e-3, 1e-2, 1e-1], clock=lambda: float(learn.train_iter), cbs=probe)
    np.testing.assert_allclose(probe.lrs, np.array([1e-3, 1e-2, 1e-1]) * (1 - np.arange(5)/5)[:, None])
    quiet(learn, learn.fit_budget, 8., sched=warmup_cos(1e-2, 0.25), clock=lambda: float(learn.train_iter), cbs=probe)
    np.testing.assert_allclose(np.array(probe.lrs)[:, 0], warmup_cos(1e-2, 0.25)(np.arange(8)/8))

def test_fit_budget_spent_during_validation_stops_at_epoch_end():
    learn,t = synth_learner(n_trn=5),[0.]
    class Jump(Callback):
        def after_validate(self): t[0] = 100.  # the budget runs out while validating epoch 0
    quiet(learn, learn.fit_budget, 7., 1e-2, clock=lambda: t[0], cbs=Jump())
    assert len(learn.recorder.values) == 1 and len(learn.recorder.hps['lr']) == 5

@pytest.mark.parametrize('kw,match', [(dict(seconds=0.), 'seconds'), (dict(seconds=float('inf')), 'seconds'), (dict(clock=3), 'clock'),
                                      (dict(sched=sched_lin(1., 0.), lr_max=1e-2), 'lr_max'), (dict(sched=warmup_cos(1e-2, '2ba')), "'2ba'"),
                                      (dict(lr_max=-1.), 'lr_max'), (dict(max_epoch=0), 'max_epoch')])
def test_fit_budget_bad_input(kw, match):
    learn = synth_learner(n_trn=2)
    w = weights(learn)
    with pytest.raises((ValueError, TypeError), match=match): learn.fit_budget(**{'seconds': 10., **kw})
    assert same(w, weights(learn))

def test_plateau_callback_sits_out_lr_find():
    cb = CooldownOnPlateau(duration='50ep')
    learn = synth_learner(n_trn=2, cbs=cb)
    quiet(learn, learn.lr_find, num_it=10, show_plot=False)
    with pytest.raises(ValueError, match="'50ep'"): quiet(learn, learn.fit, 2, 1e-2)
    cb.duration = '1ep'
    quiet(learn, learn.fit, 2, 1e-2)

def test_cooldown_and_budget_go_through_the_shared_fit_path():
    "Like every fit_* method: a bad `cbs` entry is refused before anything changes, and a fault mid-fit leaves no scheduler attached"
    from fastai.test_utils import synth_learner
    learn = synth_learner(n_trn=5)
    learn.fit(1, 1e-2)
    n_cbs = len(learn.cbs)
    with pytest.raises(TypeError, match='`cbs`'): learn.cooldown(1, cbs=[1])
    with pytest.raises(TypeError, match='`cbs`'): learn.fit_budget(1., cbs=[1], clock=lambda: 0.)
    class Boom(Callback):
        def after_batch(self): raise RuntimeError('boom')
    with pytest.raises(RuntimeError): learn.cooldown(1, cbs=Boom())
    with pytest.raises(RuntimeError): learn.fit_budget(1., cbs=Boom(), clock=lambda: 0.)
    assert len(learn.cbs) == n_cbs and not any(isinstance(cb, ParamScheduler) for cb in learn.cbs)
    learn.fit(1, 1e-3)

@pytest.mark.parametrize('short,long', [('lin', 'linear'), ('cos', 'cosine')])
def test_cooldown_takes_both_spellings(short, long):
    "'lin'/'cos' are 'linear'/'cosine' wherever a decay is chosen, with the momentum too"
    hps = []
    for decay in (short, long):
        learn = synth_learner(n_trn=4)
        quiet(learn, learn.cooldown, 2, lr_start=1e-2, mom=(0.85, 0.95), decay=decay)
        hps.append(learn.recorder.hps)
    assert hps[0] == hps[1]
    assert CooldownOnPlateau('valid_loss', decay=short).decay == long
    from fastai_anneal.callback import cooldown_sched
    assert cooldown_sched(1., 0., short)(0.5) == cooldown_sched(1., 0., long)(0.5)
