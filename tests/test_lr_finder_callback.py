"""`LRFinder` used by itself (`learn.fit(n, cbs=LRFinder())`, as fastai's notebook does) puts the Learner back
itself, fills the `Recorder` as fastai's does, and works with subclasses written for fastai's."""
import math
import numpy as np, pytest, torch
from fastai.callback.core import Callback
from fastai.test_utils import synth_learner
from fastai_anneal.all import *
import fastai_anneal.lr_find as lf
from lr_find_state import make_learner, full_state, assert_same, opt_state

def test_fastai_notebook_usage():
    "fastai's own test of its LRFinder (nbs/14_callback.schedule.ipynb), on ours"
    learn = synth_learner()
    init_a,init_b = learn.model.a.clone(),learn.model.b.clone()
    with learn.no_logging(): learn.fit(20, cbs=LRFinder(num_it=100))
    rec = learn.recorder
    assert len(rec.lrs) <= 100
    assert len(rec.lrs) == len(rec.losses)
    if len(rec.lrs) < 100: assert rec.losses[-1] > 4 * min(rec.losses)
    np.testing.assert_allclose(rec.lrs, [SchedExp(1e-7, 10)(i/100) for i in range(len(rec.lrs))])
    assert [len(v) for v in rec.values] == [1]*len(rec.values)  # no validation
    assert torch.equal(learn.model.a, init_a) and torch.equal(learn.model.b, init_b)
    assert learn.opt.state_dict()['state'] == [{}, {}]
    assert rec.hps['lr'] == rec.lrs  # fastai's LRFinder is a ParamScheduler: it records `hps` too

@pytest.mark.parametrize('opt', ['adam', 'sgd_mom', 'torch_adamw'])
def test_alone_it_restores_weights_and_optimizer(opt):
    "Before: `fit(n, cbs=LRFinder())` left the weights as trained at lrs up to 10"
    learn = make_learner(opt)
    learn.fit(1)
    before = full_state(learn)
    learn.fit(3, cbs=LRFinder(num_it=10))
    assert_same(learn, before)
    assert len(learn.recorder.lrs) == len(learn.recorder.losses) > 0
    fig = learn.recorder.plot_lr_find()
    assert fig is not None
    import matplotlib.pyplot as plt
    plt.close('all')  # no figure left for a later test's notebook to show

class Boom(Callback):
    order = 70
    def after_batch(self):
        if self.train_iter == 3: raise RuntimeError('boom')

@pytest.mark.parametrize('snapshot', ("disk", "cpu", "device"))
def test_alone_it_restores_after_an_exception(snapshot):
    learn = make_learner()
    learn.fit(1)
    before = full_state(learn)
    with pytest.raises(RuntimeError, match='boom'): learn.fit(2, cbs=[LRFinder(num_it=10, snapshot=snapshot), Boom()])
    assert_same(learn, before)
    assert not any(isinstance(cb, (LRFinder, Boom)) for cb in learn.cbs)
    learn.fit(1)  # usable

def test_snapshot_none_restores_nothing():
    learn = make_learner()
    learn.fit(1)
    w = [p.detach().clone() for p in learn.model.parameters()]
    learn.fit(1, cbs=LRFinder(num_it=10, snapshot=None))
    assert not all(torch.equal(a, b) for a,b in zip(w, learn.model.parameters()))

def test_lr_find_snapshots_once(monkeypatch):
    "`lr_find` keeps the state with `keep_state`; its finder does not take a second snapshot"
    calls = []
    orig = lf._snapshot
    monkeypatch.setattr(lf, '_snapshot', lambda *a: calls.append(1) or orig(*a))
    learn = make_learner()
    learn.lr_find(num_it=10, show_plot=False)
    assert len(calls) == 1

def test_added_for_good_it_restores_after_each_fit():
    learn = make_learner()
    learn.fit(1)
    before = full_state(learn)
    cb = LRFinder(num_it=5)
    learn.add_cb(cb)
    learn.fit(1)
    assert_same(learn, before)
    learn.fit(1)
    assert_same(learn, before)
    learn.remove_cb(cb)

class FastaiStyle(LRFinder):
    "A subclass as written for fastai's LRFinder: its own `before_batch`, and `super()` calls"
    def __init__(self, start_lr=1e-7, end_lr=10, num_it=100, stop_div=True):
        super().__init__(start_lr, end_lr, num_it, stop_div)
        self.seen = 0
    def before_batch(self): self._update_val(self.train_iter/self.num_it)
    def after_batch(self):
        self.seen += 1
        super().after_batch()

def test_fastai_style_subclass():
    learn = make_learner()
    learn.fit(1)
    before = full_state(learn)
    cb = FastaiStyle(num_it=10)
    learn.fit(3, cbs=cb)
    assert_same(learn, before)
    assert cb.seen == len(cb.lrs) == 10
    np.testing.assert_allclose(cb.lrs, [1e-7*1e8**(i/10) for i in range(10)])
    assert cb.scheds['lr'](0.) == pytest.approx(1e-7) and cb.num_it == 10 and cb.stop_div
    assert math.isfinite(cb.best_loss)

def test_pickles_without_its_snapshot():
    import pickle
    cb = LRFinder(num_it=10)
    learn = make_learner()
    learn.add_cb(cb)
    learn.fit(1)
    assert '_keep' not in pickle.loads(pickle.dumps(cb)).__dict__
    learn.remove_cb(cb)

@pytest.mark.parametrize('num_it', [1, 2, 5])
def test_short_runs_fastai_accepts(num_it):
    "fastai takes `num_it` < 6 (it runs 6 batches); ours runs exactly `num_it` and suggests from them"
    learn = make_learner()
    res = learn.lr_find(num_it=num_it, show_plot=False)
    assert len(learn.recorder.lrs) == num_it
    assert learn.recorder.lrs[0] <= res.valley <= learn.recorder.lrs[-1]

@pytest.mark.parametrize('make', [lambda: ScaleOnPlateau(patience=0), lambda: CooldownOnPlateau(patience=0),
                                  lambda: ParamScheduler({'lr': sched_cos(1e-2, 1e-4)})])
def test_lr_find_with_the_learners_schedulers_attached(make):
    "They would scale or set the test's lr (ScaleOnPlateau raised IndexError): they wait, and come back in place"
    cb = make()
    learn = make_learner(cbs=cb)
    learn.fit(2)
    cbs,state = list(learn.cbs),dict(vars(cb))
    before = full_state(learn)
    learn.lr_find(num_it=10, show_plot=False)
    np.testing.assert_allclose(learn.recorder.lrs, [1e-7*1e8**(i/10) for i in range(10)])
    assert_same(learn, before)
    assert list(learn.cbs) == cbs and cb.learn is learn
    assert set(vars(cb)) == set(state)
    learn.fit(1)

def test_alone_without_a_recorder_is_a_value_error():
    learn = make_learner()
    learn.fit(1)
    learn.remove_cb(learn.recorder)
    before = full_state(learn)
    with pytest.raises(ValueError, match='Recorder'): learn.fit(1, cbs=LRFinder(num_it=10))
    assert_same(learn, before)
