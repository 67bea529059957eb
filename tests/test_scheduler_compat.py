"""ParamScheduler as a drop-in for fastai's: exact positions from the batch counters at any length, fastai-style
subclasses (fastai's own LRFinder), `hps` filled as fastai fills it, `show_doc`, and Learners exported by plain
fastai loaded with the plugin on (and back), each side in its own process."""
import os, subprocess, sys, tempfile, textwrap, warnings
from pathlib import Path
import numpy as np, pytest, torch
from fastai.callback.core import Callback, CancelFitException, CancelValidException
from fastai.test_utils import synth_learner
from fastai_anneal.all import *

ROOT = Path(__file__).resolve().parents[1]

def fit(learn, n, **kw):
    with warnings.catch_warnings(), learn.no_bar(), learn.no_logging():
        warnings.simplefilter('ignore')
        learn.fit(n, **kw)

# ---------------------------------------------------------------- positions from the counters

class _Loader:
    def __init__(self, n): self.n = n
    def __len__(self): return self.n

class FakeLearn:
    "What ParamScheduler reads of a Learner, at any batch counts (nothing is trained)"
    def __init__(self, opt, n_epoch, n_iter):
        self.opt,self.n_epoch,self.n_iter,self.epoch,self.iter,self.training = opt,n_epoch,n_iter,0,0,True
        self.dls = type('DLs', (), {'train': _Loader(n_iter)})()
        self.pct_train,self.cbs = 0.,[]

def running_pct_train(n, k):
    "fastai's `pct_train` before batch `k` of one epoch of `n` batches: 1/n added batch by batch"
    p,step = 0.,1./n
    for _ in range(k): p += step
    return p

@pytest.mark.parametrize('n_epoch,n_iter', [(1, 10**7), (10, 10**6)])
def test_milestone_fires_at_its_batch_at_huge_counts(n_epoch, n_iter):
    "A milestone at 0.9 of 10^7 batches: fastai's running pct_train has drifted; the counters are exact"
    learn = synth_learner(n_trn=2)
    learn.create_opt()
    fake = FakeLearn(learn.opt, n_epoch, n_iter)
    cb = ParamScheduler({'lr': combine_scheds([0.9, 0.1], [sched_no(1., 1.), sched_no(0.1, 0.1)])})
    cb.learn = fake
    cb.before_fit()
    k = 9*10**6
    fake.epoch,i = divmod(k, n_iter)
    if n_epoch == 1:
        drifted = running_pct_train(n_iter, k)
        assert drifted != 0.9 and abs(drifted - 0.9) < 1e-9  # what fastai's ParamScheduler would read
    for it,want in [(i - 1, 1.), (i, 0.1)] if i else [(i, 0.1)]:
        fake.iter = it
        fake.pct_train = running_pct_train(n_iter, it) if n_epoch == 1 else fake.epoch/n_epoch + it/(n_epoch*n_iter)
        cb.before_train()
        cb.before_batch()
        assert learn.opt.hypers[0]['lr'] == want

def test_positions_are_the_counters_exactly():
    learn = synth_learner(n_trn=2)
    learn.create_opt()
    fake = FakeLearn(learn.opt, 7, 3_000_001)
    cb = ParamScheduler({'lr': lambda p: p})
    cb.learn = fake
    cb.before_fit()
    for e,i in [(0, 0), (3, 1_234_567), (6, 3_000_000)]:
        fake.epoch,fake.iter = e,i
        fake.pct_train = (e*fake.n_iter + i)/(7*fake.n_iter)
        cb.before_train(); cb.before_batch()
        assert learn.opt.hypers[0]['lr'] == (e*fake.n_iter + i)/(7*fake.n_iter)

# ---------------------------------------------------------------- fastai-style subclasses

class FastaiLRFinder(ParamScheduler):
    "fastai's LRFinder (fastai/callback/schedule.py), line for line, on our ParamScheduler"
    def __init__(self, start_lr=1e-7, end_lr=10, num_it=100, stop_div=True):
        if num_it < 6: num_it = 6
        self.scheds = {'lr': SchedExp(start_lr, end_lr)}
        self.num_it,self.stop_div = num_it,stop_div

    def before_fit(self):
        super().before_fit()
        path = self.path/self.model_dir
        path.mkdir(parents=True, exist_ok=True)
        self.tmp_d = tempfile.TemporaryDirectory(dir=path)
        self.tmp_p = Path(self.tmp_d.name).stem
        self.learn.save(f'{self.tmp_p}/_tmp')
        self.best_loss = float('inf')

    def before_batch(self): self._update_val(self.train_iter/self.num_it)

    def after_batch(self):
        super().after_batch()
        if self.smooth_loss < self.best_loss: self.best_loss = self.smooth_loss
        if self.smooth_loss > 4*self.best_loss and self.stop_div: raise CancelFitException()
        if self.train_iter >= self.num_it: raise CancelFitException()

    def before_validate(self): raise CancelValidException()

    def after_fit(self):
        self.learn.opt.zero_grad()
        tmp_f = self.path/self.model_dir/self.tmp_p/'_tmp.pth'
        if tmp_f.exists():
            self.learn.load(f'{self.tmp_p}/_tmp', with_opt=True)
            self.tmp_d.cleanup()

def test_fastai_lr_finder_runs_on_ours(tmp_path):
    "scheds set in __init__ without ours, _update_val, super().after_batch() then self.hps, as fastai's lr_find runs it"
    learn = synth_learner(n_trn=5, path=tmp_path)
    w0 = [p.detach().clone() for p in learn.model.parameters()]
    cb = FastaiLRFinder(num_it=12, stop_div=False)
    fit(learn, 12//5 + 1, cbs=cb)
    np.testing.assert_allclose(cb.hps['lr'], [1e-7*(1e8)**(i/12) for i in range(12)], rtol=1e-12)
    np.testing.assert_allclose(learn.recorder.lrs, cb.hps['lr'], rtol=1e-12)
    assert all(torch.equal(a, b) for a,b in zip(w0, learn.model.parameters()))

class Peek(Callback):
    "Reads the scheduler's `hps` after each batch, as a fastai subclass or logger would"
    order = 70
    def before_fit(self): self.seen = []
    def after_batch(self):
        if self.training: self.seen.append((self.param_scheduler.hps['lr'][-1], self.opt.hypers[-1]['lr']))

def test_hps_filled_batch_by_batch_as_fastai():
    learn = synth_learner(n_trn=5)
    cb = ParamScheduler({'lr': sched_lin(1e-3, 1e-2)})
    fit(learn, 2, cbs=[cb, peek := Peek()])
    assert [a for a,b in peek.seen] == [b for a,b in peek.seen] and len(peek.seen) == 10
    assert learn.recorder.hps is cb.hps and type(cb.hps['lr']) is list

def test_plain_function_added_after_construction():
    learn = synth_learner(n_trn=5)
    cb = ParamScheduler({'lr': sched_lin(1e-3, 1e-2)})
    cb.scheds['mom'] = lambda p: 0.95 - 0.1*p
    cb.scheds = {**cb.scheds, 'wd': lambda p: 0.01*p}
    fit(learn, 1, cbs=cb)
    np.testing.assert_allclose(learn.recorder.hps['mom'], 0.95 - 0.1*np.arange(5)/5, rtol=1e-12)
    np.testing.assert_allclose(learn.recorder.hps['wd'], 0.01*np.arange(5)/5, rtol=1e-12)
    cb.scheds['bad'] = 3
    with pytest.raises(TypeError, match=r"scheds\['bad'\]"): fit(learn, 1, cbs=cb)
    with pytest.raises(TypeError, match='`scheds`'): cb.scheds = []

def test_show_doc():
    from nbdev.showdoc import show_doc
    for f in (ParamScheduler.before_fit, ParamScheduler.before_batch, ParamScheduler.after_batch,
              ParamScheduler.after_fit, ParamScheduler._update_val):
        assert f.__doc__ and show_doc(f) is not None

def test_signatures_are_fastais():
    from fastai_oracle import fs
    import inspect
    for n in ('__init__', 'before_fit', 'before_batch', 'after_batch', 'after_fit', '_update_val'):
        assert list(inspect.signature(getattr(ParamScheduler, n)).parameters) == \
               list(inspect.signature(getattr(fs.ParamScheduler, n)).parameters), n

# ---------------------------------------------------------------- export and load across the plugin

COMMON = '''
import sys, warnings, pickle, json
warnings.simplefilter('ignore')
import torch
from fastai.data.core import Datasets
from fastai.learner import Learner, load_learner
from fastai.losses import MSELossFlat
from fastai.test_utils import RegModel
def exportable_learner(path, **kwargs):
    torch.manual_seed(0)
    x = torch.randn(64, 1)
    dsets = Datasets(range(64), tfms=[[x.__getitem__], [(2*x+3).__getitem__]], splits=[list(range(48)), list(range(48, 64))])
    return Learner(dsets.dataloaders(bs=16), RegModel(), loss_func=MSELossFlat(), path=path, **kwargs)
path = sys.argv[1]
'''
EXPORT_PLAIN = '''
from fastai.callback.schedule import ParamScheduler, SchedLin, SchedCos
learn = exportable_learner(path, cbs=ParamScheduler({'lr': SchedLin(1e-3, 1e-2), 'mom': SchedCos(0.95, 0.85)}))
with learn.no_bar(), learn.no_logging(): learn.fit(1)
learn.export('model.pkl')
assert 'fastai_anneal' not in sys.modules
'''
EXPORT_PLUGIN = '''
from fastai_anneal.all import *
learn = exportable_learner(path, cbs=ParamScheduler({'lr': sched_lin(1e-3, 1e-2), 'mom': sched_cos(0.95, 0.85)}))
with learn.no_bar(), learn.no_logging(): learn.fit(1)
learn.export('model.pkl')
'''
LOAD = '''
{imports}
learn = load_learner(path + '/model.pkl')
learn.dls = exportable_learner(path).dls
with learn.no_bar(), learn.no_logging(): learn.fit(2)
print(json.dumps({{'cls': type(learn.param_scheduler).__module__, 'lr': learn.recorder.hps['lr'],
                  'mom': learn.recorder.hps['mom']}}))
'''

def run(code, path):
    env = {**os.environ, 'PYTHONPATH': str(ROOT)}
    res = subprocess.run([sys.executable, '-c', COMMON + textwrap.dedent(code), str(path)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout

@pytest.mark.parametrize('export,imports', [(EXPORT_PLAIN, 'from fastai_anneal.all import *'), (EXPORT_PLUGIN, '')],
                         ids=['fastai export, plugin load', 'plugin export, fastai load'])
def test_export_load_across_the_plugin(export, imports, tmp_path):
    import json
    run(export, tmp_path)
    out = json.loads(run(LOAD.format(imports=imports), tmp_path).strip().splitlines()[-1])
    pos = np.arange(6)/6
    np.testing.assert_allclose(out['lr'], 1e-3 + 9e-3*pos, rtol=1e-12)
    np.testing.assert_allclose(out['mom'], 0.95 + (1 + np.cos(np.pi*(1 - pos)))/2*(0.85 - 0.95), rtol=1e-12)
    assert out['cls'] == 'fastai_anneal.callback'  # ours in both directions: plain fastai imports it to unpickle

def test_subclass_with_its_own_update_val():
    "fastai's before_batch calls `_update_val(pct_train)`: a subclass overriding it is called every batch"
    class Clipped(ParamScheduler):
        def _update_val(self, pct): super()._update_val(min(pct, 0.5))
    learn = synth_learner(n_trn=5)
    fit(learn, 2, cbs=Clipped({'lr': sched_lin(1e-3, 1e-2)}))
    np.testing.assert_allclose(learn.recorder.hps['lr'], 1e-3 + 9e-3*np.minimum(np.arange(10)/10, 0.5), rtol=1e-12)
