"""Every Learner method checks everything before `fit` is called: after any refused call the optimizer's
hyper-parameters and state, the weights and the freeze state are exactly as before (fastai's `fit` writes
`learn.lr` into the optimizer before `before_fit`, so a check there came too late). Numpy warnings are errors."""
import warnings
import numpy as np, pytest, torch
from hypothesis import given, settings, strategies as st, HealthCheck
from fastai_anneal.all import *
from lr_find_state import make_learner, full_state, assert_same
from fastai.test_utils import synth_learner

def _state(learn):
    "Everything a refused call must leave alone, with the freeze state"
    return full_state(learn), [p.requires_grad for p in learn.model.parameters()], learn.opt.frozen_idx

def trained(opt='sgd_mom'):
    "A learner after a one-cycle fit: its lr is not `learn.lr`, it has momentum state"
    learn = make_learner(opt)
    learn.fit_one_cycle(1, 1e-2)
    return learn

def never(*a): raise AssertionError('`clock` read before the checks')

REFUSED = [  # (method, args, kwargs, the argument the message names)
    ('cooldown', (1,), dict(mom=(.95, 1.5)), 'mom'),
    ('cooldown', (1,), dict(mom=2.), 'mom'),
    ('cooldown', (1,), dict(lr_min=1.), 'lr_min'),
    ('cooldown', (1,), dict(decay='square'), 'decay'),
    ('cooldown', (1,), dict(lr_start=-1.), 'lr_start'),
    ('fit_one_cycle', (1,), dict(moms=(.95, 1.5, .95)), 'moms'),
    ('fit_one_cycle', (1,), dict(div=1e-320), 'div'),
    ('fit_one_cycle', (1,), dict(div_final=1e-320), 'div_final'),
    ('fit_one_cycle', (1,), dict(pct_start='9ep'), 'pct_start'),
    ('fit_one_cycle', (1,), dict(lr_max=[1e-3]*3), 'lr_max'),
    ('fit_one_cycle', (1,), dict(wd=-1.), 'wd'),
    ('fit_one_cycle', (1,), dict(cbs=[1]), 'cbs'),
    ('fit_one_cycle', (1,), dict(reset_opt=True, moms=(2., 1., 1.)), 'moms'),
    ('fit_flat_cos', (1,), dict(pct_start=2.), 'pct_start'),
    ('fit_flat_cos', (1,), dict(div_final=1e-320), 'div_final'),
    ('fit_sgdr', (1, 1), dict(lr_min=-1.), 'lr_min'),
    ('fit_sgdr', (1, 1), dict(lr_max=float('nan')), 'lr_max'),
    ('fine_tune', (1,), dict(pct_start='9ep'), 'pct_start'),
    ('fine_tune', (1,), dict(moms=(.95, 1.5, .95)), 'moms'),
    ('fine_tune', (1,), dict(lr_mult=1e-320), 'lr_mult'),
    ('fine_tune', (1,), dict(div=0.), 'div'),
    ('fine_tune', (1,), dict(freeze_epochs=-1), 'freeze_epochs'),
    ('fit_warmup_cos', (1,), dict(pct_warmup=2.), 'pct_warmup'),
    ('fit_wsd', (1,), dict(pct_warmup=.8, pct_decay=.3), 'pct_warmup'),
    ('fit_wsd', (1,), dict(decay='square'), 'decay'),
    ('fit_budget', (1.,), dict(clock=1), 'clock'),
    ('fit_budget', (1.,), dict(clock=lambda: 'x'), 'clock'),
    ('fit_budget', (1.,), dict(clock=lambda: float('nan')), 'clock'),
    ('fit_budget', (1.,), dict(clock=lambda: 1/0), 'clock'),
    ('fit_budget', (1.,), dict(sched=sched_lin(1e-2, -1.), clock=never), 'lr'),
    ('fit_budget', (0.,), dict(), 'seconds'),
    ('lr_find', (), dict(start_lr=0.), 'start_lr'),
    ('lr_find', (), dict(snapshot='memory'), 'snapshot'),
    ('lr_find', (), dict(suggest_funcs=()), 'suggest_funcs'),
]

@pytest.mark.parametrize('meth,args,kw,name', REFUSED, ids=[f'{m}-{n}-{i}' for i,(m,_,_,n) in enumerate(REFUSED)])
def test_a_refused_call_changes_nothing(meth, args, kw, name):
    learn = trained()
    before = _state(learn)
    with warnings.catch_warnings():
        warnings.simplefilter('error', RuntimeWarning)  # a numpy warning before the error is a fault too
        with pytest.raises((ValueError, TypeError), match=name): getattr(learn, meth)(*args, **kw)
    after = _state(learn)
    assert_same(learn, before[0])
    assert after[1:] == before[1:]
    assert not any(type(cb).__name__ in ('ParamScheduler', '_TimeBudget', 'LRFinder') for cb in learn.cbs)

def test_the_next_cooldown_starts_from_the_lr_the_run_reached():
    "Before: the refused cooldown had set the optimizer's lr to `learn.lr`, and the next one started there"
    learn = trained()
    lr = learn.opt.hypers[0]['lr']
    with pytest.raises(ValueError, match='mom'): learn.cooldown(1, mom=(.95, 1.5))
    learn.cooldown(1)
    assert learn.recorder.hps['lr'][0] == pytest.approx(lr)

def test_a_mom_the_optimizer_lacks_is_refused_first():
    learn = trained('torch_adagrad')
    before = _state(learn)
    with pytest.raises(ValueError, match='mom'): learn.cooldown(1, mom=.9)
    assert_same(learn, before[0])

@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(m0=st.floats(-2, 3), m1=st.floats(-2, 3), lr_min=st.floats(-1, 1))
def test_fuzz_cooldown(m0, m1, lr_min):
    "Any `mom` pair and `lr_min`: either it runs, or nothing changed"
    learn = trained()
    before = _state(learn)
    try: learn.cooldown(1, mom=(m0, m1), lr_min=lr_min)
    except (ValueError, TypeError): assert_same(learn, before[0])
    else: assert 0 <= min(m0, m1) and max(m0, m1) <= 1 and lr_min >= 0

def test_tiny_div_is_a_value_error_without_a_warning():
    learn = trained()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        for kw in (dict(div=1e-320), dict(div_final=1e-320)):
            with pytest.raises(ValueError, match='div'): learn.fit_one_cycle(1, **kw)
        with pytest.raises(ValueError, match='lr_mult'): learn.fine_tune(1, lr_mult=1e-320)

@pytest.mark.parametrize('meth,args,kw', [
    ('fit_one_cycle', (1,), dict(lr_max=-1.)), ('fit_flat_cos', (1,), dict(lr=-1.)), ('fit_sgdr', (1, 1), dict(lr_max=-1.)),
    ('fine_tune', (1,), dict(pct_start=2.)), ('fit_wsd', (1,), dict(decay='x')), ('cooldown', (1,), dict(decay='x')),
    ('cooldown', (1,), dict(lr_min=-1.)), ('cooldown', (1,), dict(mom=2.)), ('cooldown', (1,), dict(lr_start=-1.)),
    ('fit_budget', (1.,), dict(lr_max=-1.)), ('fit_one_cycle', (1,), dict(lr_max=slice(1e-3, -1.)))])
def test_refused_call_makes_no_optimizer(meth, args, kw):
    "A refused call on a Learner without an optimizer leaves it without one (values checked first)"
    learn = synth_learner(n_trn=4)
    with pytest.raises((ValueError, TypeError)):
        with learn.no_bar(), learn.no_logging(): getattr(learn, meth)(*args, **kw)
    assert learn.opt is None
