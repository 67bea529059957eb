"""ParamScheduler's record: 8 B a value kept in a long epoch (float64 chunks), and `hps`/`group_hps`/`state_dict`
as the values written, with their types, in every way a batch can be written or skipped"""
import gc, pickle, tracemalloc
import numpy as np, pytest
from torch import nn
from fastai.callback.core import Callback, CancelBatchException
from fastai.learner import Learner
from fastai.losses import MSELossFlat
from fastai.optimizer import SGD
from fastai.test_utils import synth_dbunch, synth_learner
from fastai.torch_core import set_seed
from fastai_anneal.all import *
import fastai_anneal.callback as fc

def per_layer(m): return [list(l.parameters()) for l in m]

def groups_learner(n_groups, n_trn=5):
    "A regression Learner whose optimizer has `n_groups` parameter groups (one linear layer each)"
    set_seed(0)
    model = nn.Sequential(*[nn.Linear(1, 1) for _ in range(n_groups)])
    return Learner(synth_dbunch(n_train=n_trn), model, loss_func=MSELossFlat(), opt_func=SGD,
                   splitter=per_layer)

def lr_mom(n_groups):
    "One-cycle lr (per group when `n_groups` > 1) and mom (one value for every group)"
    lr = np.geomspace(1e-4, 1e-2, n_groups) if n_groups > 1 else 1e-2
    return {'lr': combined_cos(0.25, lr/25, lr, lr/1e5), 'mom': combined_cos(0.25, 0.95, 0.85, 0.95)}

# ---------------------------------------------------------------- memory

class FakeLearn:
    "Just what the scheduler reads and writes, to step an epoch without training"
    def __init__(self, opt, n_iter): self.opt,self.n_iter,self.n_epoch,self.epoch,self.training = opt,n_iter,1,0,True

def record_growth(n_groups, n_batch):
    "Traced bytes the scheduler gains from its first batch to the last of an epoch of `n_batch`, and the values kept"
    learn = groups_learner(n_groups)
    learn.create_opt()
    cb = ParamScheduler(lr_mom(n_groups))
    cb.learn = fake = FakeLearn(learn.opt, n_batch)
    gc.collect()
    tracemalloc.start()
    try:
        cb.before_fit(); cb.before_train()
        for i in range(n_batch):
            fake.iter,fake.pct_train = i,i/n_batch
            cb.before_batch(); cb.after_batch()
            if i == 0: first = tracemalloc.get_traced_memory()[0]
        last = tracemalloc.get_traced_memory()[0]
    finally: tracemalloc.stop()
    assert len(cb.hps['lr']) == n_batch
    return last - first,(n_batch - 1)*(n_groups + 1)  # lr: a value a group; mom: one for all

@pytest.mark.parametrize('n_groups,n_batch', [(1, 2**18), (50, 2**14)])
def test_record_costs_8_bytes_a_value(n_groups, n_batch):
    "float64 chunks: 8 B a value (numpy's header, ~150 B a chunk of 64 KiB or more, is the margin); was ~33 B"
    grown,values = record_growth(n_groups, n_batch)
    assert grown/values <= 8.05, grown/values

# ---------------------------------------------------------------- the record is the values written

class Written(Callback):
    "The values the scheduler wrote for each training batch, read back right after it: the record expected"
    order = 61
    def __init__(self, names): self.names = names
    def before_fit(self): self.rows = {n: [] for n in self.names}
    def before_batch(self):
        if not self.training: return
        for n in self.names:
            if '.' in n: v = [float(self.learn.dls.train.bs)]  # the one attribute scheduled here
            else: v = [float(h[n]) for h in self.opt.hypers]
            self.rows[n].append(v)

class Peek(Callback):
    "Reads the scheduler's `hps` after each batch, as a fastai logger would"
    order = 70
    def __init__(self, cb): self.cb = cb
    def before_fit(self): self.seen = []
    def after_batch(self):
        if self.training and len(self.cb.hps['lr']):
            self.seen.append({n: (len(h), h[-1], h[:2], list(h)) for n,h in self.cb.hps.items()})

def check_record(learn, cb, written):
    "`recorder.hps`/`group_hps` (and `cb`'s) hold the values written: lists of floats, float64 arrays (batches, groups)"
    r = learn.recorder
    assert r.hps is cb.hps and r.group_hps is cb.group_hps and list(r.hps) == list(written.rows)
    for n,rows in written.rows.items():
        g = r.group_hps[n]
        assert g.dtype == np.float64 and g.flags.c_contiguous
        np.testing.assert_array_equal(g, np.array(rows, dtype=np.float64).reshape(len(rows), g.shape[1]))
        assert type(r.hps[n]) is list and all(type(v) is float for v in r.hps[n])
        assert r.hps[n] == [row[-1] for row in rows]

def fit_checked(learn, cb, n_epoch=2, cbs=()):
    "Fit with `cb` and `cbs`; check the record against the values written, and `hps` as read in the fit"
    written,peek = Written(list(cb.scheds)),Peek(cb)
    learn.fit(n_epoch, cbs=[cb, written, peek, *cbs])
    check_record(learn, cb, written)
    for seen in peek.seen:
        for n,(size,last,head,values) in seen.items():
            want = [row[-1] for row in written.rows[n]][:size]
            assert (last, head, values) == (want[-1], want[:2], want)
    return written

class Count(Callback):
    "Count the training batches begun"
    order = 0
    def before_fit(self): self.n = 0
    def before_batch(self): self.n += self.training

class CancelBefore(Callback):
    "Cancel some training batches before the scheduler writes (not recorded)"
    order = 50
    def before_batch(self):
        if self.training and (self.epoch, self.iter) in {(0, 0), (0, 3), (1, 2), (1, 3), (1, 6)}:
            raise CancelBatchException()

class CancelAfter(Callback):
    "Cancel a training batch after the scheduler wrote (recorded)"
    order = 70
    def before_batch(self):
        if self.training and self.iter == 1: raise CancelBatchException()

class Jump(Callback):
    "Move `pct_train` at batch 2 of each epoch: the scheduler follows it, off its table"
    order = 50
    def before_batch(self):
        if self.training and self.iter == 2: self.learn.pct_train = 0.9

class Faster(ParamScheduler):
    "A subclass with its own `_update_val` (called every batch, off the table)"
    def _update_val(self, pct): super()._update_val(min(1.5*pct, 1.))

SCHEDS3 = {'lr': combined_cos(0.25, np.array([1e-4, 1e-3, 1e-2]), 1e-2, 1e-6), 'mom': sched_lin(0.95, 0.85)}

@pytest.mark.parametrize('chunk', [None, 3, 1])
@pytest.mark.parametrize('case', ['one group', 'per-group lrs', 'integer attribute', 'cancelled', 'moved pct_train',
                                  'own _update_val'])
def test_record_is_the_values_written(monkeypatch, case, chunk):
    "In chunks of any size (tables and record), gaps, rows off the table and integer attributes record as written"
    if chunk: monkeypatch.setattr(fc, '_CHUNK', chunk); monkeypatch.setattr(fc, '_CHUNK_BYTES', 0)
    learn = groups_learner(1 if case == 'one group' else 3, n_trn=7)
    scheds = lr_mom(1) if case == 'one group' else dict(SCHEDS3)
    if case == 'integer attribute': scheds['dls.train.bs'] = sched_lin(16, 8)
    cbs = {'cancelled': [CancelBefore(), CancelAfter()], 'moved pct_train': [Jump(), CancelBefore()]}.get(case, [])
    cb = (Faster if case == 'own _update_val' else ParamScheduler)(scheds)
    written = fit_checked(learn, cb, cbs=[count := Count(), *cbs])
    assert len(written.rows['lr']) == count.n - 5*any(isinstance(c, CancelBefore) for c in cbs)
    if case == 'integer attribute':  # recorded as written: whole numbers, as floats
        bss = learn.recorder.hps['dls.train.bs']
        assert bss[0] == 16. and all(type(v) is float and v == round(v) for v in bss)

def test_lr_find_record():
    "`lr_find` (an `LRFinder`, writing off the table) records the lrs it wrote, a batch cancelled before it not"
    learn = groups_learner(2, n_trn=20)
    written,count = Written(['lr']),Count()
    learn.add_cbs([written, count, CancelBefore()])
    learn.lr_find(num_it=30, show_plot=False, stop_div=False)
    rows = written.rows['lr']
    assert count.n == 30 and len(rows) == 25 and learn.recorder.lrs == [r[-1] for r in rows]
    assert learn.recorder.hps['lr'] == learn.recorder.lrs and type(learn.recorder.hps['lr'][0]) is float
    np.testing.assert_array_equal(learn.recorder.group_hps['lr'], rows)

# ---------------------------------------------------------------- state_dict, pickling

class Saver(Callback):
    "`state_dict()` of the scheduler after the training batches `at` (counted from 1), and the values written so far"
    order = 65
    def __init__(self, cb, written, at): self.cb,self.written,self.at,self.states = cb,written,at,[]
    def after_batch(self):
        if not (self.training and self.train_iter in self.at): return
        self.states.append((self.cb.state_dict(), {n: list(r) for n,r in self.written.rows.items()}))

def test_state_dict_format():
    "{'rec': {name: [a float (one value for every group) or a list of floats (per group), a batch]}}"
    learn = groups_learner(3, n_trn=7)
    cb = ParamScheduler(dict(SCHEDS3))
    written = Written(list(cb.scheds))
    saver = Saver(cb, written, {1, 5, 10})
    learn.fit(2, cbs=[cb, written, saver, Jump(), CancelBefore()])
    assert [len(rows['lr']) for _,rows in saver.states] == [0, 3, 7]  # batches 0 and 3 cancelled
    for d,rows in saver.states:
        assert list(d) == ['rec'] and list(d['rec']) == ['lr', 'mom']
        assert d['rec']['lr'] == rows['lr'] and all(type(v) is list for v in d['rec']['lr'])
        assert d['rec']['mom'] == [r[0] for r in rows['mom']] and all(type(v) is float for v in d['rec']['mom'])
    assert cb.state_dict() == {'rec': {'lr': [], 'mom': []}}  # out of a fit

class Load(Callback):
    "Load the record `rec` into scheduler `cb` as a resumed fit does, after its `before_fit`"
    order = 100
    def __init__(self, cb, rec): self.cb,self.rec = cb,rec
    def before_fit(self): self.cb.load_state_dict({'rec': self.rec})

def test_load_state_dict_of_an_earlier_version():
    "A record saved before (ints, Python lists) continues: its rows first, then the fit's"
    learn = groups_learner(3, n_trn=7)
    cb = ParamScheduler(dict(SCHEDS3))
    written = Written(list(cb.scheds))
    learn.fit(1, cbs=[cb, written, Load(cb, {'lr': [[1., 2., 3.], [4, 5, 6]], 'mom': [0.5, 1]})])
    r,n = learn.recorder,len(learn.dls.train)
    np.testing.assert_array_equal(r.group_hps['lr'], [[1., 2., 3.], [4., 5., 6.], *written.rows['lr']])
    np.testing.assert_array_equal(r.group_hps['mom'], [[.5]*3, [1.]*3, *written.rows['mom']])
    assert r.hps['mom'][:2] == [0.5, 1.] and all(type(v) is float for v in r.hps['mom']) and len(r.hps['lr']) == n + 2

@pytest.mark.parametrize('rec,match', [({'lr': [[1., 2.]], 'mom': [0.5]}, 'must be 3 number'),
                                       ({'lr': [[1., 2., 3.]], 'mom': []}, 'one row a batch')])
def test_load_state_dict_refuses_a_bad_record(rec, match):
    learn = groups_learner(3, n_trn=7)
    cb = ParamScheduler(dict(SCHEDS3))
    with pytest.raises(ValueError, match=match): learn.fit(1, cbs=[cb, Load(cb, rec)])

def test_pickled_mid_fit_hps_are_lists():
    "A scheduler pickled in an interrupted fit keeps `hps` as lists of the values so far (as before)"
    learn = groups_learner(3, n_trn=7)
    cb = ParamScheduler(dict(SCHEDS3))
    class Boom(Callback):
        order = 70
        def after_batch(self):
            if self.training and self.train_iter == 4: raise KeyError('boom')
    written = Written(list(cb.scheds))
    learn.add_cbs([cb, written])
    with pytest.raises(KeyError): learn.fit(1, cbs=Boom())
    assert cb.hps['lr'][-1] == written.rows['lr'][-1][-1] and len(cb.hps['lr']) == 4
    hps = pickle.loads(pickle.dumps(cb)).hps
    assert hps == {n: [r[-1] for r in rows] for n,rows in written.rows.items()}
    assert all(type(v) is list for v in hps.values())
