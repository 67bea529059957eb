"Our values against fastai's own functions, the oracle, and the fastai course's formulas"
import math, pickle
import numpy as np, pytest, torch
from fastai_oracle import fs  # fastai's schedule module as it was before fastai_anneal installed its names
from fastai.learner import Learner
from fastai_oracle import fastai_fit_one_cycle
from fastai.test_utils import synth_learner
from fastai.optimizer import OptimWrapper
from fastai_anneal.all import *

pos = np.linspace(0, 1, 201)

@pytest.mark.parametrize('ours,theirs', [(SchedLin, fs.SchedLin), (SchedCos, fs.SchedCos), (SchedNo, fs.SchedNo), (SchedExp, fs.SchedExp)])
@pytest.mark.parametrize('start,end', [(2, 1e-2), (1e-3, 1.), (0.95, 0.85), (-1., -3.)])
def test_annealers(ours, theirs, start, end):
    f,g = ours(start, end),theirs(start, end)
    np.testing.assert_allclose([f(p) for p in pos], [g(p) for p in pos], rtol=1e-12)
    np.testing.assert_allclose(f(pos), [g(p) for p in pos], rtol=1e-12)

@pytest.mark.parametrize('power', [0.5, 1, 2, 3.3])
def test_poly(power):
    f,g = SchedPoly(1e-2, 1e-5, power),fs.SchedPoly(1e-2, 1e-5, power)
    np.testing.assert_allclose(f(pos), [g(p) for p in pos], rtol=1e-12)

# fastai computes the phase edges and the position inside a phase in float32: hence rtol 1e-6
@pytest.mark.parametrize('pct', [0.25, 0.3, 0.5, 0.9])
def test_combined_cos(pct):
    f,g = combined_cos(pct, 1e-3, 1e-2, 1e-7),fs.combined_cos(pct, 1e-3, 1e-2, 1e-7)
    np.testing.assert_allclose([f(p) for p in pos], [g(p) for p in pos], rtol=1e-5, atol=1e-12)

def test_combine_scheds():
    pcts = [0.25, 0.25, 0.5]
    ours = combine_scheds(pcts, [SchedLin(0, 1), SchedNo(1, 1), SchedCos(1, 0.1)])
    theirs = fs.combine_scheds(pcts, [fs.SchedLin(0, 1), fs.SchedNo(1, 1), fs.SchedCos(1, 0.1)])
    np.testing.assert_allclose([ours(p) for p in pos], [theirs(p) for p in pos], rtol=1e-6, atol=1e-7)

def test_fastai_schedules_inside_ours():
    f = combine_scheds([0.5, 0.5], [fs.SchedCos(0, 1), fs.SchedLin(1, 0)])
    np.testing.assert_allclose(f(pos), [f(p) for p in pos])
    np.testing.assert_allclose(f(0.25), 0.5)

def test_seed_tutorial():
    "The seed's loop `[f(o) for o in torch.linspace(0.01, 1, 100)]` and its formulas"
    p = torch.linspace(0.01, 1, 100)
    seed = {'NO': lambda s,e,x: s, 'LINEAR': lambda s,e,x: s + x*(e-s),
            'COS': lambda s,e,x: s + (1 + math.cos(math.pi*(1-x))) * (e-s) / 2, 'EXP': lambda s,e,x: s * (e/s)**x}
    for fn,t in zip([sched_no, sched_lin, sched_cos, sched_exp], 'NO LINEAR COS EXP'.split()):
        f = fn(2, 1e-2)
        vals = [f(o) for o in p]
        assert all(type(v) is float for v in vals)
        np.testing.assert_allclose(vals, [seed[t](2, 1e-2, float(o)) for o in p], rtol=1e-12)
        np.testing.assert_allclose(f(p).numpy(), np.array(vals, dtype=np.float32), rtol=1e-6)

def _fit(learn, fit, *args, **kwargs):
    fit(learn, *args, **kwargs)
    return learn.recorder.hps

@pytest.mark.parametrize('kwargs', [{}, dict(lr_max=1e-2), dict(lr_max=3e-3, pct_start=0.4, div=10., div_final=1e3, moms=(0.9, 0.8, 0.9))])
def test_fit_one_cycle_hps(kwargs):
    ours = _fit(synth_learner(n_trn=20), Learner.fit_one_cycle, 3, **kwargs)
    theirs = _fit(synth_learner(n_trn=20), fastai_fit_one_cycle, 3, **kwargs)
    assert ours.keys() == theirs.keys() == {'lr', 'mom'}
    for k in ours:
        assert len(ours[k]) == len(theirs[k]) > 3
        np.testing.assert_allclose(np.array(ours[k], dtype=float), np.array(theirs[k], dtype=float), rtol=1e-5)

def test_fit_one_cycle_groups():
    "Discriminative learning rates: a slice spreads over the groups as fastai's set_hyper does"
    def learner():
        learn = synth_learner(n_trn=20, splitter=lambda m: [[m.a], [m.b]])
        learn.create_opt()
        return learn
    ours,theirs = learner(),learner()
    ours.fit_one_cycle(2, slice(1e-4, 1e-2))
    fastai_fit_one_cycle(theirs, 2, slice(1e-4, 1e-2))
    np.testing.assert_allclose(np.array(ours.recorder.hps['lr'], dtype=float), np.array(theirs.recorder.hps['lr'], dtype=float), rtol=1e-5)
    g = ours.recorder.group_hps['lr']
    assert g.shape == (2*len(ours.dls.train), 2)
    np.testing.assert_allclose(g[:, 0]*100, g[:, 1])

def test_fit_one_cycle_adamw():
    "A torch optimizer in OptimWrapper: mom drives betas[0]"
    from functools import partial
    from fastai.test_utils import synth_dbunch, RegModel
    from fastai.losses import MSELossFlat
    learn = Learner(synth_dbunch(n_train=20), RegModel(), loss_func=MSELossFlat(), opt_func=partial(OptimWrapper, opt=torch.optim.AdamW))
    learn.fit_one_cycle(2, 1e-2)
    b0 = learn.opt.opt.param_groups[0]['betas'][0]
    assert b0 == learn.recorder.hps['mom'][-1]
    assert min(learn.recorder.hps['mom']) == pytest.approx(0.85, abs=1e-3)

def test_param_scheduler_same_as_fastai():
    scheds = {'lr': combined_cos(0.3, 1e-4, 1e-2, 1e-6), 'mom': SchedLin(0.95, 0.85), 'wd': SchedCos(1e-2, 0.)}
    ours = synth_learner(n_trn=20); ours.fit(2, cbs=ParamScheduler(scheds))
    theirs = synth_learner(n_trn=20); theirs.fit(2, cbs=fs.ParamScheduler({k: (lambda f: lambda p: f(p))(v) for k,v in scheds.items()}))
    for k in scheds:
        np.testing.assert_allclose(ours.recorder.hps[k], np.array(theirs.recorder.hps[k], dtype=float), rtol=1e-12)
