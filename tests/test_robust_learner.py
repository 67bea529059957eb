"""ParamScheduler and Learner methods: one or more regression tests per finding (F2 F3 F4 F5 F7 F8 F9 F11 F13
F16 F17 F18 F19 F21-F24). Each checks the behaviour a user expects: bad input is a ValueError/TypeError naming
the argument before any weight, optimizer or freeze state changes; no NaN/inf reaches the optimizer; our callbacks
are detached after any exception; state changed mid-fit is respected."""
import dataclasses, json, math, os, socket, subprocess, sys
from functools import partial
from pathlib import Path
import numpy as np, pytest, torch
from fastai.callback.core import Callback, CancelBatchException
from fastai.optimizer import OptimWrapper, Adam, SGD
from fastai.test_utils import synth_learner
from fastai_anneal.all import *
from test_training import learner, weights, torch_opt, OptProbe

def no_sched(learn): return not any(isinstance(cb, ParamScheduler) for cb in learn.cbs)
def pgs(learn): return [{k: (float(v) if isinstance(v, torch.Tensor) else v) for k,v in h.items()} for h in learn.opt.hypers]
def steps(learn): return vars(learn.opt_probe).get('seen', [])  # the hyper-parameters of every optimizer step
def same(ws, learn): return all(torch.equal(a, b) for a,b in zip(ws, weights(learn)))

class Jump(Callback):
    "Move `pct_train` to `to` before training batch `at` (of every epoch): the scheduler's scalar path"
    order = 50
    def __init__(self, to, at=2): self.to,self.at = to,at
    def before_batch(self):
        if self.training and self.iter == self.at: self.learn.pct_train = self.to

# F2: NaN/inf from a schedule never reaches the optimizer

@annealer
def blow_up(start, end, pos): return start/(pos-.5)

@pytest.mark.parametrize('sched', [blow_up(1e-3, 1e-3), lambda p: float('nan'), lambda p: np.full_like(np.asarray(p, dtype=float), np.inf)])
def test_non_finite_table_refused_before_writing(sched):
    learn = learner(Adam, n_trn=4, cbs=OptProbe())
    learn.create_opt(); w = weights(learn)
    with pytest.raises(ValueError, match='`lr`.*pos=') as e: learn.fit(1, cbs=ParamScheduler({'lr': sched}))  # where the value is NaN/inf, or the formula fails
    assert same(w, learn) and steps(learn) == [] and no_sched(learn)
    assert all(math.isfinite(h['lr']) for h in learn.opt.hypers)

def test_schedule_that_raises_names_the_hyper_parameter():
    learn = learner(Adam, n_trn=4)
    with pytest.raises(ValueError, match='schedule of `lr`.*ZeroDivisionError'): learn.fit(1, cbs=ParamScheduler({'lr': lambda p: 1e-3/(p-0.5)}))
    assert no_sched(learn)

def test_non_finite_scalar_path_refused_before_writing():
    "Only at pos 0.9, off the fit's grid: the value is checked where pct_train was moved to"
    learn = learner(Adam, n_trn=7, cbs=OptProbe())
    with pytest.raises(ValueError, match=r'`lr` must be finite at pos=0\.9, got nan'):
        learn.fit(2, cbs=[ParamScheduler({'lr': lambda p: float('nan') if p == 0.9 else 1e-3}), Jump(0.9)])
    assert len(learn.opt_probe.seen) == 2 and all(h['lr'] == 1e-3 for h in learn.opt.hypers)

# F3: the optimizer's dicts replaced mid-fit (learn.load with_opt, a new optimizer)

class LoadAt(Callback):
    order = 50
    def __init__(self, at, fn): self.at,self.fn = at,fn
    def before_batch(self):
        if self.training and self.iter == self.at and self.epoch == 0: self.fn(self.learn)

@pytest.mark.parametrize('opt', [Adam, torch_opt(torch.optim.AdamW)], ids=['fastai', 'torch'])
@pytest.mark.parametrize('how', ['load', 'create_opt'])
def test_replaced_optimizer_dicts_get_the_schedule(opt, how, tmp_path):
    learn = learner(opt, n_trn=6, path=tmp_path, cbs=OptProbe())
    learn.fit(1, lr=1e-3)
    learn.save('ck', with_opt=True)
    fn = (lambda l: l.load('ck', with_opt=True)) if how == 'load' else (lambda l: l.create_opt())
    s = sched_lin(1e-2, 1e-1)
    learn.fit(2, cbs=[ParamScheduler({'lr': s}), LoadAt(2, fn)])
    used = np.array([[h['lr'] for h in hs] for hs in learn.opt_probe.seen])
    n = 12
    np.testing.assert_allclose(used, np.broadcast_to(s(np.arange(n)/n)[:, None], (n, 3)), rtol=1e-6)
    np.testing.assert_allclose(learn.recorder.hps['lr'], used[:, -1], rtol=1e-6)

# F4: a bad cbs entry leaves nothing attached; the next plain fit is not scheduled

@pytest.mark.parametrize('meth,args', [('fit_one_cycle', (1, 1e-2)), ('fit_flat_cos', (1, 1e-2)), ('fit_sgdr', (1, 1, 1e-2)),
                                       ('fine_tune', (1,)), ('fit_warmup_cos', (1, 1e-2)), ('fit_wsd', (1, 1e-2))])
def test_bad_cbs_entry_attaches_nothing(meth, args):
    learn = learner(Adam, cbs=OptProbe())
    learn.create_opt(); w,ncb = weights(learn),len(learn.cbs)
    with pytest.raises(TypeError, match='`cbs`'): getattr(learn, meth)(*args, cbs=[1])
    assert no_sched(learn) and len(learn.cbs) == ncb and same(w, learn)
    assert all(p.requires_grad for p in learn.model.parameters())
    learn.fit(1, lr=0.1)
    assert {h['lr'] for hs in learn.opt_probe.seen for h in hs} == {0.1}

def test_scheduler_detached_after_failure_in_fit_setup():
    "An exception in fastai's `fit` before `before_fit` (here: creating the optimizer) detaches our scheduler"
    learn = learner(Adam)
    def bad_opt(*a, **k): raise RuntimeError('no optimizer')
    learn.create_opt(); learn.opt_func = bad_opt
    with pytest.raises(RuntimeError, match='no optimizer'): learn.fit_one_cycle(1, 1e-2, reset_opt=True)
    assert no_sched(learn)

# F5 / F18: argument errors name the user's argument, and come before freeze

@pytest.mark.parametrize('kw,name', [(dict(moms=(float('nan'), .85, .95)), 'moms'), (dict(moms=(1.5, .85, .95)), 'moms'),
                                     (dict(moms=('a', .85, .95)), 'moms'), (dict(div=1e-320), 'div'), (dict(lr_mult=1e-320), 'lr_mult'),
                                     (dict(div_final=1e-320), 'div_final'), (dict(reset_opt='no'), 'reset_opt'), (dict(cbs=['x']), 'cbs')])
def test_fine_tune_checks_everything_before_freeze(kw, name):
    learn = learner(Adam)
    learn.create_opt(); w,h,opt = weights(learn),pgs(learn),learn.opt
    with pytest.raises((ValueError, TypeError), match=f'`{name}`'): learn.fine_tune(1, **kw)
    assert all(p.requires_grad for p in learn.model.parameters()), "fine_tune froze the model before raising"
    assert same(w, learn) and pgs(learn) == h and learn.opt is opt and no_sched(learn)

@pytest.mark.parametrize('meth,kw,name', [('fit_one_cycle', dict(div=1e-320), 'div'), ('fit_one_cycle', dict(div_final=1e-320), 'div_final'),
                                          ('fit_one_cycle', dict(moms=(float('nan'), .85, .95)), 'moms'),
                                          ('fit_flat_cos', dict(div_final=1e-320), 'div_final')])
def test_overflowing_ratio_names_the_argument(meth, kw, name):
    learn = learner(Adam)
    with pytest.raises(ValueError, match=f'`{name}`'): getattr(learn, meth)(1, 1e-2, **kw)
    assert no_sched(learn)

# F7: dotted attributes

def test_delegated_attribute_refused():
    "`dls.bs` reads the training loader's; a write would land on the `DataLoaders` and change nothing"
    learn = synth_learner(n_trn=4)
    with pytest.raises(ValueError, match="'dls.bs'.*delegate"): learn.fit(1, cbs=ParamScheduler({'dls.bs': sched_lin(16, 8)}))
    assert 'bs' not in vars(learn.dls) and learn.dls.train.bs == 16

def test_integer_attribute_keeps_integers():
    learn = synth_learner(n_trn=4)
    learn.fit(2, cbs=ParamScheduler({'dls.train.bs': sched_lin(16, 8)}))
    hs = learn.recorder.hps['dls.train.bs']
    assert type(learn.dls.train.bs) is int and learn.dls.train.bs == hs[-1]
    assert all(float(v).is_integer() for v in hs) and hs[0] == 16 and hs[-1] < 16
    learn.fit(1)  # the next fit runs with an integer batch size

def test_alias_of_trained_parameter_refused():
    learn = synth_learner(n_trn=2)
    a = learn.model.a.detach().clone()
    with pytest.raises(ValueError, match='shares memory with a parameter'): learn.fit(1, cbs=ParamScheduler({'model.a.data': sched_lin(0.5, 0.)}))
    assert torch.equal(learn.model.a, a)

# F8 / F17: distributed, two gloo processes

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def run_ranks(tmp_path, mode):
    pytest.importorskip('accelerate')
    root = Path(__file__).parent.parent
    env = {**os.environ, 'ACCELERATE_USE_CPU': 'true', 'PYTHONPATH': os.pathsep.join([str(root), os.environ.get('PYTHONPATH', '')]), 'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_addr=127.0.0.1', f'--master_port={free_port()}',
           str(root/'tests'/'distrib_robust_script.py'), str(tmp_path), mode]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return [json.loads((tmp_path/f'rank{i}.json').read_text()) for i in range(2)]

def test_distributed_drop_last_anneals_to_the_end(tmp_path):
    "120 samples, batches of 16, drop_last, 2 ranks: each rank runs 3 batches an epoch, and the schedule has 3"
    for r in run_ranks(tmp_path, 'drop_last'):
        assert r['len'] == r['ran'] == 3
        n = 2*3
        np.testing.assert_allclose(r['lr'], combined_cos(0.25, 1e-2/25, 1e-2, 1e-2/1e5)(np.arange(n)/n), rtol=1e-10)

def test_distributed_uneven_data_is_an_exception(tmp_path):
    for r in run_ranks(tmp_path, 'uneven'):
        assert r['error'].startswith('ValueError') and 'different amounts of data' in r['error'] and '120, 104' in r['error']

# F9: integer tensor hyper-parameters

def test_integer_tensor_lr_is_not_truncated():
    learn = learner(lambda ps, lr, **kw: OptimWrapper(ps, torch.optim.SGD, lr=torch.tensor(1), **kw), cbs=OptProbe())
    learn.fit_one_cycle(1, 1e-2)
    used = np.array([[h['lr'] for h in hs] for hs in learn.opt_probe.seen])
    assert (used > 0).all()
    np.testing.assert_allclose(used[:, -1], learn.recorder.hps['lr'], rtol=1e-6)
    learn.fit(1, lr=0.1)
    assert learn.opt_probe.seen[-1][0]['lr'] == pytest.approx(0.1)
    assert all(g['lr'].is_floating_point() for g in learn.opt.opt.param_groups)

# F11: values outside a hyper-parameter's valid range

@pytest.mark.parametrize('scheds,name', [({'lr': one_cycle(-1e-2)}, 'lr'), ({'lr': lambda p: 1e-3 - 2e-3*p}, 'lr'),
                                         ({'mom': sched_lin(0.9, 1.2)}, 'mom'), ({'wd': sched_lin(0., -0.1)}, 'wd'),
                                         ({'sqr_mom': sched_lin(0.99, -0.5)}, 'sqr_mom'), ({'eps': sched_lin(1e-5, -1e-5)}, 'eps')])
def test_values_out_of_range_refused(scheds, name):
    learn = learner(Adam, cbs=OptProbe())
    learn.create_opt(); w = weights(learn)
    with pytest.raises(ValueError, match=f'`{name}` must be'): learn.fit(1, cbs=ParamScheduler(scheds))
    assert same(w, learn) and steps(learn) == [] and no_sched(learn)

def test_fit_one_cycle_moms_out_of_range():
    learn = learner(Adam)
    learn.create_opt(); h = pgs(learn)
    with pytest.raises(ValueError, match='`moms`'): learn.fit_one_cycle(1, moms=(1.5, -3, 7))
    assert pgs(learn) == h

# F13: a batch cancelled before the scheduler runs

class CancelAt(Callback):
    order = 50
    def __init__(self, at=0): self.at = at
    def before_batch(self):
        if self.training and self.iter == self.at and self.epoch == 0: raise CancelBatchException()

def test_cancelled_batch_zero_keeps_the_record():
    learn = learner(Adam, n_trn=5)
    s = sched_lin(1e-3, 1e-2)
    learn.fit(1, cbs=[ParamScheduler({'lr': s}), CancelAt(0)])
    np.testing.assert_allclose(learn.recorder.hps['lr'], s(np.arange(1, 5)/5), rtol=1e-12)
    assert learn.recorder.group_hps['lr'].shape == (4, 3)

# F16: read-only attributes refused before fit

@dataclasses.dataclass(frozen=True)
class Frozen: alpha: float = 1.

class ReadOnly(Callback):
    def __init__(self): self.cfg = Frozen()
    @property
    def strength(self): return 0.5

@pytest.mark.parametrize('key', ['read_only.strength', 'read_only.cfg.alpha'])
def test_read_only_attribute_refused_in_before_fit(key):
    learn = learner(Adam, cbs=[ReadOnly(), OptProbe()])
    learn.create_opt(); w = weights(learn)
    with pytest.raises(ValueError, match='read-only'): learn.fit(1, cbs=ParamScheduler({'lr': sched_lin(1e-2, 1e-1), key: sched_lin(1., 0.)}))
    assert same(w, learn) and steps(learn) == [] and all(h['lr'] != 1e-2 for h in learn.opt.hypers)

# F19: a learned (requires grad) tensor hyper-parameter

def test_lr_tensor_requiring_grad_refused():
    lr = torch.tensor(0.1, requires_grad=True)
    learn = learner(lambda ps, **kw: OptimWrapper(ps, torch.optim.SGD, **{**kw, 'lr': lr}))
    learn.create_opt(); w = weights(learn)
    with pytest.raises(ValueError, match="'lr'.*requires grad"): learn.fit_one_cycle(1, 1e-2)
    assert same(w, learn) and no_sched(learn)

# F21-F24: bool-ish and list arguments of the fit_* and plot methods

FITS = {'fit_one_cycle': (1, 1e-2), 'fit_flat_cos': (1, 1e-2), 'fit_sgdr': (1, 1, 1e-2), 'fine_tune': (1,),
        'fit_warmup_cos': (1, 1e-2), 'fit_wsd': (1, 1e-2)}

@pytest.mark.parametrize('meth', FITS)
@pytest.mark.parametrize('v', ['no', 0, 1, None, 'False'])
def test_reset_opt_must_be_a_bool(meth, v):
    learn = learner(Adam)
    learn.create_opt(); opt = learn.opt
    with pytest.raises(TypeError, match='`reset_opt`'): getattr(learn, meth)(*FITS[meth], reset_opt=v)
    assert learn.opt is opt and no_sched(learn)

@pytest.mark.parametrize('kw,name', [(dict(keys=[]), 'keys'), (dict(keys=3), 'keys'), (dict(keys=['lr', 2]), 'keys'), (dict(groups='yes'), 'groups'),
                                     (dict(groups=1), 'groups'), (dict(figsize='big'), 'figsize'), (dict(figsize=(1, -2)), 'figsize')])
def test_plot_sched_arguments(kw, name):
    learn = learner(Adam)
    learn.fit_one_cycle(1)
    with pytest.raises((TypeError, ValueError), match=f'`{name}`'): learn.recorder.plot_sched(**kw)
    learn.recorder.plot_sched(keys='lr', groups=np.bool_(True))

def test_adam_momentum_of_one_refused_before_training():
    "Adam's bias correction divides by 1 - mom: mom = 1 is refused up front (was ZeroDivisionError at batch 0)"
    from fastai.optimizer import Adam, SGD
    learn = synth_learner(n_trn=2)
    learn.opt_func = Adam
    learn.create_opt()
    w = [p.detach().clone() for p in learn.model.parameters()]
    with learn.no_bar(), learn.no_logging():
        with pytest.raises(ValueError, match='`moms` must be < 1'): learn.fit_one_cycle(1, 1e-3, moms=(1, 0., 0.))
        with pytest.raises(ValueError, match='`mom` must be < 1'): learn.fit(1, 1e-3, cbs=ParamScheduler({'mom': sched_no(1., 1.)}))
        with pytest.raises(ValueError, match='`sqr_mom` must be < 1'): learn.fit(1, 1e-3, cbs=ParamScheduler({'sqr_mom': sched_no(1., 1.)}))
    assert all(torch.equal(a, b) for a,b in zip(w, learn.model.parameters()))
    assert not any(isinstance(cb, ParamScheduler) for cb in learn.cbs)
    sgd = synth_learner(n_trn=2)
    sgd.opt_func = SGD
    with sgd.no_bar(), sgd.no_logging(): sgd.fit_one_cycle(1, 1e-3, moms=(1, 0., 0.))  # no division: fine
