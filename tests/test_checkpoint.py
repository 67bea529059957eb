"`Checkpoint`: a fit killed after any batch and run again ends bit-identical to the whole fit"
import os, pickle, subprocess, sys
from pathlib import Path
import numpy as np, pytest, torch
from fastai.callback.core import Callback
from fastai_anneal.all import *
from fastai_anneal.checkpoint import Checkpoint, save_atomic
from checkpoint_script import FITS, learner

ROOT = Path(__file__).parent.parent
SCRIPT = Path(__file__).parent/'checkpoint_script.py'
ENV = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]),
       'OMP_NUM_THREADS': '1'}

def run_script(out, fit, kill=0, workers=0):
    cmd = [sys.executable, str(SCRIPT), str(out), fit, str(kill), str(workers)]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    return r.returncode, r.stderr[-3000:]

def result(out): return torch.load(Path(out)/'result.pt', weights_only=False)

def assert_same(a, b):
    "Bit-identical weights, the same recorded hyper-parameters, metrics and losses"
    assert a['weights'].keys() == b['weights'].keys()
    for k in a['weights']: assert torch.equal(a['weights'][k], b['weights'][k]), k
    assert a['hps'] == b['hps']
    assert a['values'] == b['values']
    assert a['losses'] == b['losses']

@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    "The uninterrupted run of each fit, made once"
    done = {}
    def get(fit, workers=0):
        if (fit, workers) not in done:
            out = tmp_path_factory.mktemp(f'ref_{fit}')
            rc,err = run_script(out, fit, workers=workers)
            assert rc == 0, err
            done[fit, workers] = result(out)
        return done[fit, workers]
    return get

# 6 batches an epoch, 3 epochs, a checkpoint every 4 batches and at each epoch's end
@pytest.mark.parametrize('fit,kill,workers', [
    ('one_cycle', 5, 0),    # mid-epoch: resumes after batch 4
    ('one_cycle', 7, 0),    # just after an epoch's end: resumes at the start of the second epoch
    ('one_cycle', 12, 0),   # after an epoch's last batch, before its end was saved: resumes after 8
    ('one_cycle', 17, 0),   # in the last epoch
    ('fine_tune', 9, 0),    # in the second (unfrozen) fit of `fine_tune`
    ('acc', 7, 0),          # gradients accumulated but not stepped when the epoch's end was saved
    ('one_cycle', 5, 2),    # two loader processes (which draw no random numbers here)
])
def test_killed_and_rerun_is_bit_identical(tmp_path, reference, fit, kill, workers):
    rc,err = run_script(tmp_path, fit, kill, workers)
    assert rc == 3, err  # died where asked
    assert (tmp_path/'models'/'ckpt.pth').exists() and not (tmp_path/'result.pt').exists()
    rc,err = run_script(tmp_path, fit, workers=workers)
    assert rc == 0, err
    assert_same(result(tmp_path), reference(fit, workers))
    if kill == 5:  # the checkpoint now says finished: one more run trains afresh, to the same end
        rc,err = run_script(tmp_path, fit)
        assert rc == 0, err
        assert_same(result(tmp_path), reference(fit))

def test_fastai_schedules_without_the_plugin(tmp_path):
    "Only `Checkpoint` imported: fastai's own `fit_one_cycle` (closures, `hps` lists) resumes exactly"
    script = Path(__file__).parent/'checkpoint_fastai_script.py'
    def run(out, kill=0):
        r = subprocess.run([sys.executable, str(script), str(out), str(kill)], env=ENV,
                           capture_output=True, text=True, timeout=300)
        return r.returncode, r.stderr[-3000:]
    ref,out = tmp_path/'ref',tmp_path/'run'
    for args,want in [((ref,), 0), ((out, 5), 3), ((out,), 0)]:  # the run killed after batch 5 of 12
        rc,err = run(*args)
        assert rc == want, err
    a,b = result(ref),result(out)
    for k in a['weights']: assert torch.equal(a['weights'][k], b['weights'][k]), k
    assert len(a['lr']) == 12 and (a['lr'], a['mom'], a['values']) == (b['lr'], b['mom'], b['values'])

class Crash(Callback):
    "Fail after `k` training batches, after `Checkpoint` saved (in-process: cheaper than a kill)"
    order = Checkpoint.order + 1
    def __init__(self, k, order=None):
        self.k = k
        if order is not None: self.order = order
    def after_batch(self):
        if self.training and self.train_iter == self.k: raise RuntimeError('crash')

def fit_once(path, fit, crash=None, every='4ba', bar=False):
    "Fit `fit` of `checkpoint_script` in folder `path`; return what `assert_same` compares"
    learn = learner(path)
    cbs = [Checkpoint(every=every, fname='ckpt')] + ([Crash(crash)] if crash else [])
    if bar: FITS[fit](learn, cbs)
    else:
        with learn.no_bar(), learn.no_logging(): FITS[fit](learn, cbs)
    r = learn.recorder
    return dict(weights=learn.model.state_dict(), hps=r.hps, values=[list(v) for v in r.values],
                losses=[float(x) for x in r.losses])

@pytest.mark.parametrize('fit,crash', [('flat_cos', 5), ('sgdr', 9), ('warmup_cos', 2), ('wsd', 15),
                                       ('cooldown', 11), ('fit_sched', 8), ('fine_tune', 3),
                                       ('acc', 9)])
def test_every_fit_resumes_exactly(tmp_path, fit, crash):
    ref = fit_once(tmp_path/'ref', fit)
    with pytest.raises(RuntimeError, match='crash'): fit_once(tmp_path/'run', fit, crash)
    assert_same(fit_once(tmp_path/'run', fit), ref)

@pytest.mark.parametrize('crash', [5, 9])
def test_resume_with_the_progress_bar_and_logs(tmp_path, crash):
    "fastai's default progress bar and logs: the bar counts the skipped epochs on"
    ref = fit_once(tmp_path/'ref', 'one_cycle', bar=True)
    with pytest.raises(RuntimeError): fit_once(tmp_path/'run', 'one_cycle', crash, bar=True)
    assert_same(fit_once(tmp_path/'run', 'one_cycle', bar=True), ref)

def test_a_callback_only_the_crashed_run_had(tmp_path):
    "The killed run had one more callback, ordered before the schedulers: their states still match up"
    ref = fit_once(tmp_path/'ref', 'one_cycle')
    learn = learner(tmp_path/'run')
    with learn.no_bar(), learn.no_logging(), pytest.raises(RuntimeError):
        learn.fit_one_cycle(3, 1e-2, cbs=[Checkpoint(every='4ba', fname='ckpt'), Crash(9, order=0)])
    assert_same(fit_once(tmp_path/'run', 'one_cycle'), ref)

def test_every_epoch(tmp_path):
    "every='1ep': only the epochs' ends are saved"
    ref = fit_once(tmp_path/'ref', 'one_cycle', every='1ep')
    with pytest.raises(RuntimeError): fit_once(tmp_path/'run', 'one_cycle', 10, every='1ep')
    ck = torch.load(tmp_path/'run'/'models'/'ckpt.pth', weights_only=False)
    assert (ck['epoch'], ck['iter']) == (1, 0)
    assert_same(fit_once(tmp_path/'run', 'one_cycle', every='1ep'), ref)

@pytest.mark.parametrize('every', ['500', '0ba', '2.5ep', 3, None])
def test_bad_every(every):
    with pytest.raises(ValueError, match='`every` must be a duration'): Checkpoint(every=every)

def test_bad_fname_and_resume():
    with pytest.raises(TypeError, match='`fname`'): Checkpoint(fname='')
    with pytest.raises(TypeError, match='`fname`'): Checkpoint(fname=3)
    with pytest.raises(TypeError, match='`resume`'): Checkpoint(resume='yes')

def crashed(path, n_epoch=3, k=5):
    "A learner in `path` whose `fit_one_cycle(n_epoch)` crashed after batch `k`, checkpoint left"
    learn = learner(path)
    with pytest.raises(RuntimeError), learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(n_epoch, 1e-2, cbs=[Checkpoint(every='4ba', fname='ckpt'), Crash(k)])
    return learn

@pytest.mark.parametrize('call,what', [
    (lambda l, cb: l.fit_one_cycle(4, 1e-2, cbs=cb), '`n_epoch` 3 there, 4 here'),
    (lambda l, cb: l.fit_one_cycle(3, 2e-2, cbs=cb), '`scheds`'),
    (lambda l, cb: l.fit_flat_cos(3, 1e-2, cbs=cb), 'fit_one_cycle'),
    (lambda l, cb: l.fit_one_cycle(3, 1e-2, wd=0.1, cbs=cb), '`wd`'),
])
def test_another_fit_is_refused_before_any_change(tmp_path, call, what):
    learn = crashed(tmp_path)
    w = {k: v.clone() for k,v in learn.model.state_dict().items()}
    cb = Checkpoint(every='4ba', fname='ckpt')
    with learn.no_bar(), learn.no_logging():
        with pytest.raises(ValueError, match='written by another fit') as e: call(learn, cb)
    assert what in str(e.value)
    assert all(torch.equal(w[k], v) for k,v in learn.model.state_dict().items())
    assert cb not in learn.cbs and 'all_batches' not in learn.__dict__
    assert all(c.run for c in learn.cbs)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, 1e-2)  # still usable

def test_other_model_shapes_refused(tmp_path):
    crashed(tmp_path)
    learn = learner(tmp_path)
    learn.model[0] = torch.nn.Linear(4, 16, bias=False)
    with pytest.raises(ValueError, match='`shapes`'), learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(3, 1e-2, cbs=Checkpoint(every='4ba', fname='ckpt'))

def test_resume_false_trains_afresh(tmp_path):
    crashed(tmp_path)
    ref = fit_once(tmp_path/'ref', 'one_cycle')
    learn = learner(tmp_path)
    with learn.no_bar(), learn.no_logging():
        cb = Checkpoint(every='4ba', fname='ckpt', resume=False)
        learn.fit_one_cycle(4, 1e-2, cbs=cb)  # no refusal
    assert len(learn.recorder.values) == 4
    assert ref['hps']['lr'][0] == learn.recorder.hps['lr'][0]

def test_crash_while_saving_keeps_the_last_checkpoint(tmp_path):
    f = tmp_path/'ck.pth'
    save_atomic({'a': torch.ones(3)}, f)
    with pytest.raises(Exception): save_atomic({'a': torch.zeros(3), 'b': lambda: 0}, f)
    assert torch.equal(torch.load(f)['a'], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ['ck.pth']

def test_lr_find_get_preds_and_export_with_checkpoint(tmp_path):
    learn = learner(tmp_path)
    learn.add_cb(Checkpoint(every='1ba', fname='ckpt'))
    with learn.no_bar(), learn.no_logging():
        learn.lr_find(num_it=10, show_plot=False)
        learn.get_preds()
        assert not (tmp_path/'models'/'ckpt.pth').exists()  # neither saves nor resumes
        learn.fit_one_cycle(1, 1e-2)
    assert torch.load(tmp_path/'models'/'ckpt.pth', weights_only=False)['finished']
    assert isinstance(pickle.loads(pickle.dumps(learn)).checkpoint, Checkpoint)  # as `export` does

def test_start_epoch(tmp_path):
    "A fit started at `start_epoch` resumes too (its skipped epochs stay skipped)"
    fit = lambda path, crash=None: _fit_start(path, crash)
    ref = fit(tmp_path/'ref')
    with pytest.raises(RuntimeError): fit(tmp_path/'run', 3)
    assert_same(fit(tmp_path/'run'), ref)

def _fit_start(path, crash):
    learn = learner(path)
    cbs = [Checkpoint(every='4ba', fname='ckpt')] + ([Crash(crash)] if crash else [])
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(3, 1e-2, start_epoch=1, cbs=cbs)
    r = learn.recorder
    return dict(weights=learn.model.state_dict(), hps=r.hps, values=[list(v) for v in r.values],
                losses=[float(x) for x in r.losses])

def _fit_cb(path, cb, crash=None):
    learn = learner(path)
    cbs = [Checkpoint(every='4ba', fname='ckpt'), cb()] + ([Crash(crash)] if crash else [])
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(4, 1e-2, cbs=cbs)
    r = learn.recorder
    return dict(weights=learn.model.state_dict(), hps=r.hps, values=[list(v) for v in r.values],
                losses=[float(x) for x in r.losses])

def test_cooldown_on_plateau_resumes(tmp_path):
    cb = lambda: CooldownOnPlateau(monitor='valid_loss', patience=0, min_delta=10., duration='5ba')
    ref = _fit_cb(tmp_path/'ref', cb)
    assert len(ref['values']) < 4  # the cooldown ran and stopped the fit
    with pytest.raises(RuntimeError): _fit_cb(tmp_path/'run', cb, 9)
    assert_same(_fit_cb(tmp_path/'run', cb), ref)

def test_scale_on_plateau_resumes(tmp_path):
    cb = lambda: ScaleOnPlateau(monitor='valid_loss', patience=0, threshold=10.)
    ref = _fit_cb(tmp_path/'ref', cb)
    with pytest.raises(RuntimeError): _fit_cb(tmp_path/'run', cb, 15)
    res = _fit_cb(tmp_path/'run', cb)
    assert all(torch.equal(ref['weights'][k], v) for k,v in res['weights'].items())
    assert res['values'] == ref['values'] and res['losses'] == ref['losses']
    assert res['hps'] == ref['hps']

def test_fit_budget_carries_the_time_spent(tmp_path):
    "The budget holds across a crash: the re-run goes on with the time the first run spent"
    t = [0.]
    def clock(): return t[0]
    class Tick(Callback):
        def after_batch(self): t[0] += self.training  # a tick a training batch
    def fit(crash=None):
        learn = learner(tmp_path)
        cbs = [Checkpoint(every='4ba', fname='ckpt'), Tick()] + ([Crash(crash)] if crash else [])
        with learn.no_bar(), learn.no_logging(): learn.fit_budget(30., 1e-2, clock=clock, cbs=cbs)
        return learn
    with pytest.raises(RuntimeError): fit(10)
    t[0] = 1000.  # another clock, far on: only the time spent counts
    learn = fit()
    assert learn.train_iter == 30  # a tick a batch: 8 before the checkpoint and 22 after
    lrs = learn.recorder.hps['lr']
    assert len(lrs) == 30 and lrs[8] < lrs[7] < lrs[0]

def test_two_processes_each_rank_resumes_exactly(tmp_path):
    "Under `distrib_ctx` (2 CPU processes, gloo) both ranks die; the re-run ends bit-identical"
    pytest.importorskip('accelerate')
    from test_distributed import free_port
    def launch(out, kill):
        out.mkdir(exist_ok=True)
        script = Path(__file__).parent/'checkpoint_distrib_script.py'
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
               '--master_addr=127.0.0.1', f'--master_port={free_port()}', str(script), str(out),
               str(kill)]
        env = {**ENV, 'ACCELERATE_USE_CPU': 'true'}
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    r = launch(tmp_path/'ref', 0)
    assert r.returncode == 0, r.stderr[-3000:]
    assert launch(tmp_path/'run', 5).returncode != 0  # both ranks died after batch 5
    assert not (tmp_path/'run'/'rank0.pt').exists()
    r = launch(tmp_path/'run', 0)
    assert r.returncode == 0, r.stderr[-3000:]
    for rank in (0, 1):
        assert_same(result_rank(tmp_path/'run', rank), result_rank(tmp_path/'ref', rank))

def result_rank(out, rank): return torch.load(out/f'rank{rank}.pt', weights_only=False)

def test_validate_neither_saves_nor_resumes(tmp_path):
    "`validate` runs `before_fit` and `after_fit` too: no fit, so nothing is written or loaded"
    learn = crashed(tmp_path)
    f = tmp_path/'models'/'ckpt.pth'
    before = f.read_bytes()
    w = {k: v.clone() for k,v in learn.model.state_dict().items()}
    learn.add_cb(Checkpoint(every='1ba', fname='ckpt'))
    with learn.no_bar(): learn.validate()
    assert f.read_bytes() == before
    assert all(torch.equal(w[k], v) for k,v in learn.model.state_dict().items())

def test_buffers_are_part_of_the_identity(tmp_path):
    "A model whose buffers differ (not its parameters) is refused before any weight is loaded"
    crashed(tmp_path)
    learn = learner(tmp_path)
    learn.model[1] = torch.nn.BatchNorm1d(16, track_running_stats=False)
    w = {k: v.clone() for k,v in learn.model.state_dict().items()}
    with pytest.raises(ValueError, match='`shapes`'), learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(3, 1e-2, cbs=Checkpoint(every='4ba', fname='ckpt'))
    assert all(torch.equal(w[k], v) for k,v in learn.model.state_dict().items())
