"""A table-driven sweep of ParamScheduler and every public Learner method fastai_anneal defines (fit_one_cycle,
fit_flat_cos, fit_sgdr, fine_tune, fit_warmup_cos, fit_wsd, Recorder.plot_sched; lr_find is swept in its own file)
with bad inputs and injected faults.

Bad input: a ValueError/TypeError naming the argument; weights, optimizer hyper-parameters and freeze state unchanged;
no `ParamScheduler` left attached; a plain `fit` works afterwards, unscheduled.
Faults (an exception, `KeyboardInterrupt` or a `Cancel*Exception` from a callback at every event, before and after
the scheduler): only the injected exception (if any) comes out, the scheduler is detached, every recorded value is
finite and one per scheduled batch, and a plain `fit` works afterwards, unscheduled."""
from functools import partial
import numpy as np, pytest, torch
from fastai.callback.core import (Callback, CancelBatchException, CancelEpochException, CancelTrainException, CancelValidException,
                                  CancelFitException, CancelStepException, CancelBackwardException)
from fastai.optimizer import Adam
from fastai_anneal.all import *
from test_training import learner, weights

nan,inf = float('nan'),float('inf')
HUGE = 10**400

class NoInit(Callback):
    def __init__(self): raise RuntimeError('no init')

# Bad values by kind of argument
POS = [nan, inf, -inf, -1., 0., HUGE, -HUGE, 'a', '0.1', b'0.5', True, 1+1j, [], [nan], object(), {}]  # finite and > 0
DIV = POS + [1e-320]  # and the learning rate divided by it finite
LR = [nan, inf, -1., 0., HUGE, 'a', '0.1', b'0.5', True, 1+1j, [], [nan]*3, [1e-3]*2, [1e-3, -1e-3, 1e-3], slice(-1e-4, 1e-2), slice(1e-4, nan),
      slice(1e-4, 1e-2, 2), slice('a', 1e-2), object(), {}]
NONNEG = [nan, inf, -1e-3, HUGE, 'a', b'0.5', True, 1+1j, [], [nan], object()]
FRAC = [nan, inf, -0.1, 1.5, HUGE, 'a', '0.5', True, None, 1+1j, [0.1], object()]
COUNT = [0, -1, 1.5, 2.0, nan, 'a', '1', True, None, HUGE, [1], object()]
IDX = [-1, 1.5, nan, 'a', True, None, HUGE, [0], object()]  # start_epoch
WD = [nan, inf, -1., HUGE, 'a', b'0.5', True, 1+1j, [0.1]*2, [nan]*3, [-0.1]*3, object()]
MOMS = [(nan, .85, .95), (1.5, -3, 7), (.95, .85, inf), ('a', .85, .95), (0.9, 0.8), 0.9, 'abc', [0.9]*4, (True, .85, .95), ({}, .85, .95)]
CBS = [1, 'x', [1], [None], object(), [lambda: 0], int, [Callback(), 3], {'a': 1}]
BOOL = ['no', 'False', 0, 1, None, 1.0, [True], np.float64(1)]

def sweep(meth, args, table):
    return [(meth, args, name, v) for name,vals in table.items() for v in vals]

CASES = (
    sweep('fit_one_cycle', (1,), dict(n_epoch=COUNT, lr_max=LR, div=DIV, div_final=DIV, pct_start=FRAC, wd=WD, moms=MOMS, cbs=CBS, reset_opt=BOOL, start_epoch=IDX)) +
    sweep('fit_flat_cos', (1,), dict(n_epoch=COUNT, lr=LR, div_final=DIV, pct_start=FRAC, wd=WD, cbs=CBS, reset_opt=BOOL, start_epoch=IDX)) +
    sweep('fit_sgdr', (1, 1), dict(n_cycles=COUNT, cycle_len=COUNT, lr_max=LR, cycle_mult=COUNT, cbs=CBS, reset_opt=BOOL, wd=WD, start_epoch=IDX, lr_min=NONNEG)) +
    sweep('fine_tune', (1,), dict(epochs=COUNT, base_lr=POS, freeze_epochs=[-1, 1.5, nan, 'a', True, None, HUGE], lr_mult=DIV, pct_start=FRAC, div=DIV,
                                  start_epoch=IDX, div_final=DIV, wd=WD, moms=MOMS, cbs=CBS, reset_opt=BOOL)) +
    sweep('fit_warmup_cos', (1,), dict(n_epoch=COUNT, lr_max=LR, pct_warmup=FRAC, lr_min=NONNEG, wd=WD, cbs=CBS, reset_opt=BOOL, start_epoch=IDX)) +
    sweep('fit_wsd', (1,), dict(n_epoch=COUNT, lr_max=LR, pct_warmup=FRAC, pct_decay=FRAC, decay=['bogus', 1, None, b'linear'], lr_min=NONNEG, wd=WD,
                                cbs=CBS, reset_opt=BOOL, start_epoch=IDX))
)

def positional(meth, args, name, v):
    "Arguments for `meth` with `name` set to `v`: the leading positional ones (`n_epoch`...) replaced where named"
    lead = {'fit_sgdr': ['n_cycles', 'cycle_len'], 'fine_tune': ['epochs']}.get(meth, ['n_epoch'])
    args = list(args) + [1]*(len(lead)-len(args))
    if name in lead: args[lead.index(name)] = v; return args,{}
    return args,{name: v}

def state(learn):
    return ([p.detach().clone() for p in learn.model.parameters()], [p.requires_grad for p in learn.model.parameters()],
            [{k: float(v) for k,v in h.items()} for h in learn.opt.hypers], learn.opt, sorted(type(cb).__name__ for cb in learn.cbs))  # fastai's `no_bar` re-adds a new progress callback

def same_state(a, b):
    return (all(torch.equal(x, y) for x,y in zip(a[0], b[0])) and a[1] == b[1] and
            all(x.keys() == y.keys() and all(x[k] == y[k] or (x[k] != x[k] and y[k] != y[k]) for k in x) for x,y in zip(a[2], b[2])) and
            a[3] is b[3] and a[4] == b[4])

class Probe(Callback):
    "The learning rate of every optimizer step"
    order = 99
    def __init__(self): self.lrs = []
    def before_step(self): self.lrs.append(self.opt.hypers[-1]['lr'])

def usable(learn):
    "A plain fit works afterwards, at the learning rate it is given (no scheduler left behind)"
    p = Probe()
    learn.fit(1, lr=0.05, cbs=p)
    assert not any(isinstance(cb, ParamScheduler) for cb in learn.cbs)
    assert p.lrs and set(p.lrs) == {0.05}

@pytest.fixture(scope='module')
def base():
    learn = learner(Adam, n_trn=2)
    learn.create_opt()
    return learn

@pytest.mark.parametrize('meth,args,name,v', CASES, ids=[f'{m}-{n}-{i}' for i,(m,_,n,_) in enumerate(CASES)])
def test_bad_input(base, meth, args, name, v):
    learn = base
    before = state(learn)
    a,kw = positional(meth, args, name, v)
    with pytest.raises((ValueError, TypeError)) as e: getattr(learn, meth)(*a, **kw)
    assert name in str(e.value), f"{type(e.value).__name__}: {e.value}"
    assert same_state(before, state(learn))
    assert not any(isinstance(cb, ParamScheduler) for cb in learn.cbs)

def test_learner_usable_after_the_bad_inputs(base): usable(base)

def test_setup_faults():
    "Faults in fastai's `fit` before `before_fit`: a callback class that cannot be built, an optimizer that cannot be created"
    learn = learner(Adam, n_trn=2)
    for meth,args in [('fit_one_cycle', (1,)), ('fit_flat_cos', (1,)), ('fit_sgdr', (1, 1)), ('fine_tune', (1,)), ('fit_warmup_cos', (1,)), ('fit_wsd', (1,))]:
        with pytest.raises(RuntimeError, match='no init'): getattr(learn, meth)(*args, cbs=NoInit)
        assert not any(isinstance(cb, ParamScheduler) for cb in learn.cbs), meth
        usable(learn)

# ParamScheduler itself: bad `scheds`, at construction or at the start of `fit`

SCHEDS = [
    ('scheds', 3), ('scheds', {}), ('scheds', [('lr', sched_lin(0, 1))]), ('keys', {1: sched_lin(0, 1)}), ('keys', {'.lr': sched_lin(0, 1)}),
    ('lr', {'lr': 3}), ('lr', {'lr': 'x'}), ('lr', {'lr': lambda p: nan}), ('lr', {'lr': lambda p: inf}), ('lr', {'lr': one_cycle(-1e-2)}),
    ('lr', {'lr': lambda p: -1e-3}), ('lr', {'lr': lambda p: [1e-3]*2}), ('mom', {'mom': sched_lin(0.9, 1.5)}), ('mom', {'mom': lambda p: nan}),
    ('sqr_mom', {'sqr_mom': sched_lin(0.99, -1.)}), ('wd', {'wd': sched_lin(0., -1.)}), ('eps', {'eps': sched_lin(1e-5, -1e-5)}),
    ('nope', {'nope': sched_lin(0, 1)}), ('model.nope.p', {'model.nope.p': sched_lin(0, 1)}), ('model.0.weight', {'model.0.weight': sched_lin(0, 1)}),
    ('model.1.p', {'model.1.p': lambda p: nan}), ('model.1.inplace', {'model.1.inplace': sched_lin(0, 1)}), ('dls.bs', {'dls.bs': sched_lin(16, 8)}),
    ('model.0.weight.data', {'model.0.weight.data': sched_lin(0, 1)}), ('opt.hypers', {'opt.hypers': sched_lin(0, 1)}),
]

@pytest.mark.parametrize('name,scheds', SCHEDS, ids=[f'{n}-{i}' for i,(n,_) in enumerate(SCHEDS)])
def test_bad_scheds(base, name, scheds):
    learn = base
    learn.opt.set_hypers(lr=learn.lr)  # what fastai's `fit` sets before the scheduler starts
    before = state(learn)
    with pytest.raises((ValueError, TypeError)) as e: learn.fit(1, cbs=ParamScheduler(scheds))
    assert name in str(e.value), f"{type(e.value).__name__}: {e.value}"
    assert same_state(before, state(learn))

def test_bad_plot_sched_arguments():
    learn = learner(Adam, n_trn=2)
    learn.fit_one_cycle(1)
    cases = [('keys', dict(keys=[])), ('keys', dict(keys=3)), ('keys', dict(keys=['nope'])), ('keys', dict(keys=[1])), ('keys', dict(keys='nope')),
             ('keys', dict(keys={})), ('groups', dict(groups='yes')), ('groups', dict(groups=1)), ('groups', dict(groups=None)),
             ('figsize', dict(figsize='big')), ('figsize', dict(figsize=(1,))), ('figsize', dict(figsize=(1, -2))), ('figsize', dict(figsize=(nan, 1)))]
    for name,kw in cases:
        with pytest.raises((ValueError, TypeError), match=name): learn.recorder.plot_sched(**kw)
    learn.recorder.plot_sched(keys=['lr'], groups=True, figsize=(4, 3))
    usable(learn)

# Injected faults

EVENTS = ['before_fit', 'before_epoch', 'before_train', 'before_batch', 'after_pred', 'after_loss', 'before_backward', 'after_backward',
          'before_step', 'after_step', 'after_cancel_batch', 'after_batch', 'after_cancel_train', 'after_train', 'before_validate',
          'after_cancel_validate', 'after_validate', 'after_cancel_epoch', 'after_epoch', 'after_cancel_fit', 'after_fit']
EXCS = [RuntimeError, KeyboardInterrupt, CancelBatchException, CancelEpochException, CancelTrainException, CancelValidException,
        CancelFitException, CancelStepException, CancelBackwardException]

class Fault(Callback):
    "Raise `exc` at the first (training, if it has one) `event`, with `order` before or after the scheduler's 60"
    def __init__(self, event, exc, order): self.event,self.exc,self.order,self.done = event,exc,order,False
    def __call__(self, event_name):
        if event_name == self.event and not self.done and (self.training or event_name not in _train_events):
            self.done = True
            raise self.exc()
        if event_name == 'before_batch' and self.event.startswith('after_cancel'): self._cancel(event_name)  # something to cancel
        return super().__call__(event_name)
    def _cancel(self, e):
        exc = {'after_cancel_batch': CancelBatchException, 'after_cancel_train': CancelTrainException, 'after_cancel_validate': CancelValidException,
               'after_cancel_epoch': CancelEpochException, 'after_cancel_fit': CancelFitException}[self.event]
        if not getattr(self, '_cancelled', False) and (exc is CancelValidException) == (not self.training):
            self._cancelled = True
            raise exc()

_train_events = {'before_batch', 'after_pred', 'after_loss', 'before_backward', 'after_backward', 'before_step', 'after_step', 'after_batch'}

FAULT_FITS = {'fit_one_cycle': (2, 1e-2), 'fit_flat_cos': (2, 1e-2), 'fit_sgdr': (2, 1, 1e-2), 'fine_tune': (1,), 'fit_warmup_cos': (2, 1e-2), 'fit_wsd': (2, 1e-2)}
FAULTS = ([('fit_one_cycle', e, x, o) for e in EVENTS for x in EXCS for o in (50, 70)] +
          [(m, e, x, 50) for m in list(FAULT_FITS)[1:] for e in EVENTS for x in (RuntimeError, KeyboardInterrupt, CancelBatchException, CancelFitException)])

@pytest.mark.parametrize('meth,event,exc,order', FAULTS, ids=[f'{m}-{e}-{x.__name__}-{o}' for m,e,x,o in FAULTS])
def test_fault(meth, event, exc, order):
    learn = learner(Adam, n_trn=2)
    try:
        with learn.no_bar(): getattr(learn, meth)(*FAULT_FITS[meth], cbs=Fault(event, exc, order))  # fastai's progress bar fails on an epoch cancelled before it starts
    except exc: pass  # the injected exception may come out (a Cancel* fastai does not catch at that event)
    assert not any(isinstance(cb, (ParamScheduler, Fault)) for cb in learn.cbs)
    hps = getattr(learn.recorder, 'group_hps', {})
    for k,g in hps.items():
        assert np.isfinite(g).all() and len(g) == len(learn.recorder.hps[k])
    usable(learn)

# Random numbers, hypothesis: every input is refused (naming an argument, nothing changed) or trains on finite, in-range values

from hypothesis import given, settings, HealthCheck, strategies as st

num = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**400, 10**400), st.sampled_from([1e-320, 1e-3, 0.5, 25., 1e5]))
ARGS = ['lr_max', 'div', 'div_final', 'pct_start', 'wd', 'moms']

@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(lr_max=num, div=num, div_final=num, pct_start=num, wd=num, moms=st.tuples(num, num, num))
def test_fit_one_cycle_random_numbers(lr_max, div, div_final, pct_start, wd, moms):
    learn = learner(Adam, n_trn=2)  # a fresh one: an accepted huge learning rate may leave NaN weights
    learn.create_opt()
    before = state(learn)
    try:
        with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, lr_max, div, div_final, pct_start, wd, moms)
    except (ValueError, TypeError) as e:
        assert any(f'`{a}' in str(e) for a in ARGS), f"{type(e).__name__}: {e}"
        assert same_state(before, state(learn)) and not any(isinstance(cb, ParamScheduler) for cb in learn.cbs)
        return
    g = learn.recorder.group_hps
    assert np.isfinite(g['lr']).all() and (g['lr'] >= 0).all() and ((g['mom'] >= 0) & (g['mom'] <= 1)).all()
