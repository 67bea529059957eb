"""`fit_budget`'s `clock`: every fault of the clock names `clock`; stopping at `max_epoch` before the budget is
spent is said (a warning naming `max_epoch`, and `stopped` in the answer and in `recorder.budget`)."""
import warnings
import pytest
from fastai.callback.core import Callback, CancelFitException
from fastai.test_utils import synth_learner
from fastai_anneal.all import *

def ticks(*vals):
    "A clock returning `vals`, then the last one forever"
    it = iter(vals)
    last = [vals[-1]]
    def clock():
        last[0] = next(it, last[0])
        return last[0]
    return clock

class Raises:
    def __call__(self): raise OSError('no clock here')

@pytest.mark.parametrize('clock,kind', [
    (1, TypeError), ('monotonic', TypeError),
    (lambda: 'x', TypeError), (lambda: None, TypeError), (lambda: True, TypeError), (lambda: 1j, TypeError),
    (lambda: float('nan'), ValueError), (lambda: float('inf'), ValueError), (lambda: 1/0, ValueError),
    (Raises(), ValueError), (ticks(10., 5.), ValueError), (ticks(0., 1., 2., 1.5), ValueError)])
def test_every_fault_of_the_clock_names_clock(clock, kind):
    learn = synth_learner(n_trn=5)
    with learn.no_bar(), learn.no_logging():
        with pytest.raises(kind, match='`clock`'): learn.fit_budget(100., 1e-2, clock=clock, max_epoch=3)
    learn.fit(1)  # usable

def test_a_clock_going_backwards_says_so():
    learn = synth_learner(n_trn=5)
    with pytest.raises(ValueError, match="backwards"): learn.fit_budget(100., clock=ticks(10., 5.))

def test_max_epoch_first_is_a_warning_and_said():
    learn = synth_learner(n_trn=5)
    with pytest.warns(UserWarning, match='max_epoch'): res = learn.fit_budget(100., 1e-2, clock=lambda: 0., max_epoch=2)
    assert res.stopped == 'max_epoch' and res.epochs == 2 and res.seconds == 0.
    assert learn.recorder.budget == res

def test_spent_budget_is_said_without_a_warning():
    learn = synth_learner(n_trn=5)
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)
        res = learn.fit_budget(12., 1e-2, clock=lambda: float(learn.train_iter))
    assert res.stopped == 'budget' and res.seconds == 12. and res.epochs == 3
    assert learn.recorder.budget == res

class StopAt(Callback):
    def after_epoch(self):
        if self.epoch == 0: raise CancelFitException()

def test_another_callback_stopping_is_said():
    learn = synth_learner(n_trn=5)
    res = learn.fit_budget(100., 1e-2, clock=lambda: 0., cbs=StopAt(), max_epoch=5)
    assert res.stopped == 'cancelled' and res.epochs == 0
