"""A fuzz of `Learner.lr_find`: bad arguments (a table, and hypothesis over numbers) must raise ValueError/TypeError naming
the argument with nothing changed; faults injected at every training event (exceptions, KeyboardInterrupt, fastai's
Cancel*Exceptions) must leave the Learner restored bit for bit and usable. Run as a script for the counts."""
import math
import numpy as np, pytest, torch
from hypothesis import given, settings, HealthCheck, strategies as st
import fastai.callback.core as fcc
from fastai.callback.core import Callback
from fastai_anneal.all import *
from lr_find_state import make_learner, full_state, diff

class Count(Callback):
    "Counts training batches (to check that a refused call ran none)"
    n = 0
    def before_batch(self): self.n += 1

def _learner(opt='torch_adamw'):
    learn = make_learner(opt, n_trn=32, bs=8)
    learn.fit(1)
    learn.add_cb(Count())
    return learn

NAN,INF = float('nan'),float('inf')
BAD = dict(
    start_lr=[0, -1e-3, NAN, INF, -INF, '1e-3', None, True, 10**400, -10**400, [1e-3], (1e-3,), 1+1j, np.float64(NAN), torch.tensor([1e-3, 1e-2]),
              b'1', 1e-320, 5e-324, 20., 10, np.float32(1e30)],
    end_lr=[0, -1, NAN, INF, '10', None, False, 10**400, [10], 1e-8, 1e-7, np.array([10.]), 2**2000, 1e39, 1e300],
    num_it=[0, -1, 6.5, '100', None, True, 10., np.float64(20), [10], -10**30, 2.5],
    stop_div=['yes', 1, 0, None, np.float64(1), 'False', [True]],
    show_plot=['yes', 1, None, 0., [False]],
    suggest_funcs=[(), [], ('valley',), [1], 'valley', 42, (valley, None)],
    step_mode=['log', None, 1, 'EXP', 'exp ', b'exp', ['exp']],
    snapshot=['gpu', None, 1, 'Disk', 'memory', b'disk', ['cpu']])

def try_bad(learn, name, v):
    "Whether `lr_find(name=v)` is refused well: ValueError/TypeError naming `name`, no batch run, nothing changed"
    before,count = full_state(learn),learn.count
    count.n = 0
    kw = {name: v} | ({} if name == 'show_plot' else dict(show_plot=False))
    try: learn.lr_find(num_it=8, **kw) if name != 'num_it' else learn.lr_find(**kw)
    except (ValueError, TypeError) as e: ok = name in str(e)
    except Exception: ok = False
    else: ok = False
    return ok and count.n == 0 and diff(before, full_state(learn)) is None

def bad_input_counts():
    learn = _learner()
    res = [(n, v, try_bad(learn, n, v)) for n,vs in BAD.items() for v in vs]
    return len(res), sum(ok for *_,ok in res), [(n, v) for n,v,ok in res if not ok]

def test_bad_arguments_are_refused_by_name_with_nothing_changed():
    tried,handled,failed = bad_input_counts()
    print(f'bad inputs: {tried} tried, {handled} handled well')
    assert not failed, failed

_LEARN = {}

@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(start=st.floats(allow_nan=True, allow_infinity=True), end=st.floats(allow_nan=True, allow_infinity=True),
       mode=st.sampled_from(['exp', 'lin']))
def test_any_float_start_end_either_runs_finite_or_is_refused(start, end, mode):
    "Any pair of floats: refused naming start_lr/end_lr before any batch, or a run whose every lr is finite and > 0"
    learn = _LEARN.get('sgd') or _LEARN.setdefault('sgd', _learner('sgd_mom'))
    before = full_state(learn)
    learn.count.n = 0
    try: learn.lr_find(start_lr=start, end_lr=end, num_it=6, step_mode=mode, show_plot=False, suggest_funcs=None)
    except (ValueError, TypeError) as e:
        assert 'start_lr' in str(e) or 'end_lr' in str(e)
        assert learn.count.n == 0
    else:
        lrs = np.asarray(learn.recorder.lrs)
        assert len(lrs) and np.isfinite(lrs).all() and (lrs > 0).all()
    assert diff(before, full_state(learn)) is None

EVENTS = [e for e in fcc._events if e != 'after_create']
FAULTS = [RuntimeError, ValueError, KeyboardInterrupt, fcc.CancelBatchException, fcc.CancelStepException, fcc.CancelBackwardException,
          fcc.CancelTrainException, fcc.CancelEpochException, fcc.CancelFitException, fcc.CancelValidException]

class Fault(Callback):
    "Raise `exc` the first time `event` happens at or after training batch `at`"
    def __init__(self, event, exc, at, order):
        self.exc,self.at,self.order,self.fired = exc,at,order,False
        setattr(self, event, self._fire)
    def _fire(self):
        if not self.fired and getattr(self.learn, 'train_iter', 0) >= self.at:
            self.fired = True
            raise self.exc('injected')

def inject(learn, event, exc, at, order, snapshot):
    "Whether lr_find survives `exc` at `event`: the Learner restored bit for bit, no callback left behind, training goes on"
    before,cbs = full_state(learn),list(learn.cbs)
    cb = Fault(event, exc, at, order)
    learn.add_cb(cb)
    try: learn.lr_find(num_it=6, show_plot=False, snapshot=snapshot)
    except BaseException as e:
        # the injected exception reaches the caller; a cancelled run may leave too few points to suggest from (ValueError)
        if not (type(e) is exc or (isinstance(e, ValueError) and 'injected' not in str(e) and issubclass(exc, Exception))): return False, cb.fired
    finally: learn.remove_cb(cb)
    ok = diff(before, full_state(learn)) is None and list(learn.cbs) == cbs
    try: learn.fit(1)  # still usable
    except Exception: ok = False
    return ok, cb.fired

WHEN = (0, -20), (3, 55), (5, 70)  # (first training batch it may fire at, callback order: before the Recorder, between, after LRFinder)

def fault_counts(full=False):
    "Inject every fault at every event (at one of `WHEN`, in turn, or at each with `full`); count those fired and survived"
    learn,res,i = _learner(),[],0
    for event in EVENTS:
        for exc in FAULTS:
            for at,order in (WHEN if full else [WHEN[i % 3]]):
                ok,fired = inject(learn, event, exc, at, order, ('disk', 'cpu', 'device')[i % 3]); i += 1
                if fired: res.append((event, exc.__name__, at, ok))
    return len(res), sum(ok for *_,ok in res), [r[:3] for r in res if not r[-1]]

def test_faults_at_every_event_leave_the_learner_restored():
    injected,survived,failed = fault_counts()
    print(f'faults: {injected} injected, {survived} survived')
    assert injected > 100 and not failed, failed

if __name__ == '__main__':
    tried,handled,failed = bad_input_counts()
    print(f'bad inputs: {tried} tried, {handled} handled well', failed or '')
    injected,survived,failed = fault_counts(full=True)
    print(f'faults: {injected} injected, {survived} survived', failed or '')
