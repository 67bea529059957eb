"""ParamScheduler in real training: parameter groups, every hyper-parameter of fastai's and torch's optimizers,
attributes beyond the optimizer, tensor hyper-parameters and torch.compile, resume, export, faults, bad input"""
import pickle
from functools import partial
import numpy as np, pytest, torch
from torch import nn
from fastai.callback.core import Callback
from fastai.callback.tracker import SaveModelCallback
from fastai.learner import Learner, load_learner
from fastai.losses import MSELossFlat
from fastai.optimizer import OptimWrapper, Adam, SGD, RMSProp, Lamb
from fastai.test_utils import synth_dbunch, synth_learner
from fastai_anneal.all import *
from test_integration import exportable_learner

def weights(learn): return [p.detach().clone() for p in learn.model.parameters()]
def mlp(): return nn.Sequential(nn.Linear(1, 8), nn.Dropout(0.5), nn.Linear(8, 8), nn.Linear(8, 1))
def three_groups(m): return [list(m[0].parameters()), list(m[2].parameters()), list(m[3].parameters())]

def learner(opt_func=SGD, n_trn=5, loss_func=None, **kwargs):
    "A regression Learner on synthetic data with an MLP split in 3 parameter groups"
    return Learner(synth_dbunch(n_train=n_trn), mlp(), loss_func=loss_func or MSELossFlat(), opt_func=opt_func, splitter=three_groups, **kwargs)

def torch_opt(opt, **kw): return partial(OptimWrapper, opt=partial(opt, **kw) if kw else opt)

class OptProbe(Callback):
    "Read every hyper-parameter from the optimizer just before each step: what the step really used"
    order = 61
    def before_fit(self): self.seen = []
    def before_step(self): self.seen.append([{k: float(v) for k,v in h.items() if k in SCHEDS} for h in self.opt.hypers])

# Every hyper-parameter, fastai's optimizers and torch's

OPTS = {'fastai.SGD': partial(SGD, mom=0.9), 'fastai.Adam': Adam, 'fastai.RMSProp': partial(RMSProp, mom=0.9), 'fastai.Lamb': Lamb,
        'torch.AdamW': torch_opt(torch.optim.AdamW), 'torch.SGD': torch_opt(torch.optim.SGD, momentum=0.9),
        'torch.RMSprop': torch_opt(torch.optim.RMSprop), 'torch.Adam(tensor lr, betas)': None}

def tensor_adam(params, lr, **kw):
    "torch's Adam holding `lr` and `betas` as tensors, as a capturable/compiled setup does"
    return OptimWrapper(params, torch.optim.Adam, lr=torch.tensor(lr), betas=(torch.tensor(0.9), torch.tensor(0.99)), **kw)
OPTS['torch.Adam(tensor lr, betas)'] = tensor_adam

SCHEDS = {'lr': sched_cos(np.array([1e-4, 1e-3, 1e-2]), [1e-6, 1e-5, 1e-4]), 'mom': combined_cos(0.3, 0.95, 0.85, 0.95),
          'wd': sched_lin(1e-2, 0.), 'sqr_mom': sched_lin(0.99, 0.999), 'eps': sched_exp(1e-5, 1e-8)}

@pytest.mark.parametrize('name', OPTS)
def test_every_hyper_reaches_the_optimizer(name):
    learn = learner(OPTS[name], cbs=OptProbe())
    learn.create_opt()
    valid = valid_hypers(learn.opt)
    scheds = {k: v for k,v in SCHEDS.items() if k in valid}
    assert {'lr', 'wd'} <= set(scheds) and ('mom' in scheds or 'sqr_mom' in scheds)
    learn.fit(2, cbs=ParamScheduler(scheds))
    n = 2*len(learn.dls.train)
    for k,s in scheds.items():
        g = learn.recorder.group_hps[k]
        assert g.shape == (n, 3)
        np.testing.assert_allclose(g, np.broadcast_to(s(np.arange(n)/n).reshape(n, -1), (n, 3)), rtol=1e-12)
        np.testing.assert_array_equal(learn.recorder.hps[k], g[:, -1])
        used = np.array([[float(h[k]) for h in hs] for hs in learn.opt_probe.seen])
        np.testing.assert_allclose(used, g, rtol=1e-6)  # float32 for tensor hypers

def test_unknown_name_lists_valid_torch():
    learn = learner(torch_opt(torch.optim.AdamW))
    w = weights(learn)
    with pytest.raises(ValueError, match="no hyper-parameter 'momentum'") as e:
        learn.fit(1, cbs=ParamScheduler({'lr': sched_lin(1e-3, 1e-2), 'momentum': sched_lin(0.9, 0.8)}))
    assert all(k in str(e.value) for k in ['lr', 'mom', 'sqr_mom', 'eps', 'wd'])
    assert all(torch.equal(a, b) for a,b in zip(w, weights(learn)))
    assert not any(isinstance(cb, ParamScheduler) for cb in learn.cbs)

def test_plot_sched_every_group():
    learn = learner(Adam)
    learn.fit_one_cycle(1, slice(1e-4, 1e-2))
    fig = learn.recorder.plot_sched(groups=True, return_fig=True)
    lr_ax = [a for a in fig.axes if a.get_ylabel() == 'lr'][0]
    assert len(lr_ax.lines) == 3
    np.testing.assert_allclose(lr_ax.lines[0].get_ydata()*100, lr_ax.lines[2].get_ydata())

# Beyond the optimizer: attribute paths

class WeightedMSE(nn.Module):
    def __init__(self): super().__init__(); self.alpha,self.beta = 1.,torch.tensor(1.)
    def forward(self, p, y): return self.alpha*self.beta*((p-y)**2).mean()

class Holder(Callback):
    def __init__(self): self.strength,self.vals = [0.],[]
    def before_step(self): self.vals.append((self.learn.model[1].p, self.learn.loss_func.alpha, float(self.learn.loss_func.beta), self.strength[0]))

def test_attributes_scheduled_like_hypers():
    learn = learner(loss_func=WeightedMSE(), cbs=Holder())
    beta = learn.loss_func.beta
    scheds = {'lr': sched_lin(1e-3, 1e-2), 'model.1.p': sched_lin(0.5, 0.), 'loss_func.alpha': sched_cos(1., 2.),
              'loss_func.beta': sched_lin(1., 3.), 'holder.strength.0': sched_exp(1., 1e-2)}
    learn.fit(2, cbs=ParamScheduler(scheds))
    n = 2*len(learn.dls.train)
    expect = np.stack([scheds[k](np.arange(n)/n) for k in list(scheds)[1:]], 1)
    np.testing.assert_allclose(np.array(learn.holder.vals), expect, rtol=1e-6)
    for k in scheds: np.testing.assert_allclose(learn.recorder.hps[k], scheds[k](np.arange(n)/n), rtol=1e-12)
    assert learn.recorder.group_hps['model.1.p'].shape == (n, 1)
    assert learn.recorder.group_hps['lr'].shape == (n, 3)
    assert learn.loss_func.beta is beta  # a tensor attribute is filled in place

@pytest.mark.parametrize('key,sched,msg', [
    ('model.9.p', sched_lin(0.5, 0.), 'learn.model.9.p does not exist'),
    ('loss_func.nope', sched_lin(0.5, 0.), 'learn.loss_func.nope does not exist'),
    ('model.1.inplace', sched_lin(0.5, 0.), 'must hold a number'),
    ('model.0.weight', sched_lin(0.5, 0.), 'must hold a number'),
    ('model.1.p', sched_lin([0.5, 0.4, 0.3], 0.), 'an attribute takes one'),
])
def test_bad_attribute_before_any_change(key, sched, msg):
    learn = learner()
    learn.create_opt()
    w,p = weights(learn),learn.model[1].p
    with pytest.raises(ValueError, match=msg): learn.fit(1, cbs=ParamScheduler({key: sched}))
    assert all(torch.equal(a, b) for a,b in zip(w, weights(learn))) and learn.model[1].p == p

def test_trained_parameter_is_not_an_attribute_to_schedule():
    learn = synth_learner(n_trn=2)
    with pytest.raises(ValueError, match='requires grad'): learn.fit(1, cbs=ParamScheduler({'model.a': sched_lin(0.5, 0.)}))

def test_bad_keys():
    for k in ['model..p', '.lr', 'lr.', 3]:
        with pytest.raises(TypeError, match='keys'): ParamScheduler({k: sched_lin(0, 1)})

# Tensor hyper-parameters and torch.compile

def test_tensor_hypers_survive_the_fit():
    learn = learner(tensor_adam)
    learn.create_opt()
    pg = learn.opt.opt.param_groups
    lr0,lrs,b0s = pg[0]['lr'],[],[]
    class Same(Callback):
        "Take the tensors once every group has its own (at the first write), then check they stay"
        order = 61
        def before_fit(self): lrs[:],b0s[:] = [g['lr'] for g in pg],[g['betas'][0] for g in pg]
        def before_step(self): assert all(g['lr'] is t for g,t in zip(pg, lrs)) and all(g['betas'][0] is t for g,t in zip(pg, b0s))
    learn.fit_one_cycle(2, slice(1e-4, 1e-2), cbs=Same())   # fastai's fit calls opt.set_hypers(lr=...) first
    np.testing.assert_allclose([float(t) for t in lrs], learn.recorder.group_hps['lr'][-1], rtol=1e-6)
    assert lrs[0] is lr0 and len({id(t) for t in lrs}) == 3
    learn.fit(1, lr=3e-3)                                      # fastai's fit alone, with our _set_hyper
    assert all(g['lr'] is t for g,t in zip(pg, lrs)) and [float(t) for t in lrs] == [pytest.approx(3e-3)]*3
    learn.opt.set_hyper('lr', slice(1e-3))
    assert all(g['lr'] is t for g,t in zip(pg, lrs)) and float(lrs[0]) == pytest.approx(1e-4)

def test_fastai_optimizer_tensor_hypers_filled_in_place():
    learn = learner(Adam)
    learn.create_opt()
    ts = [torch.tensor(1e-3) for _ in learn.opt.hypers]
    for h,t in zip(learn.opt.hypers, ts): h['lr'] = t
    learn.opt.set_hypers(lr=slice(1e-4, 1e-2), wd=0.1, newkey=2.)   # floats and new keys as in fastai
    assert all(h['lr'] is t for h,t in zip(learn.opt.hypers, ts))
    np.testing.assert_allclose([float(t) for t in ts], [1e-4, 1e-3, 1e-2], rtol=1e-6)
    assert [h['wd'] for h in learn.opt.hypers] == [0.1]*3 and learn.opt.hypers[0]['newkey'] == 2.
    with pytest.raises(AssertionError): learn.opt.set_hyper('lr', [1., 2.])   # fastai's own check is kept

def test_fastai_optimizer_with_tensor_defaults():
    "One tensor shared by the groups of fastai's Optimizer: scheduling gives each group its own, once"
    learn = learner(Adam)
    learn.create_opt()
    t = torch.tensor(1e-5)
    for h in learn.opt.hypers: h['eps'] = t
    learn.fit(1, cbs=ParamScheduler({'eps': sched_lin(np.array([1e-5, 1e-6, 1e-7]), 1e-8)}))
    eps = [h['eps'] for h in learn.opt.hypers]
    assert len({id(t) for t in eps}) == 3 and all(isinstance(t, torch.Tensor) for t in eps)
    np.testing.assert_allclose([float(t) for t in eps], learn.recorder.group_hps['eps'][-1], rtol=1e-6)

def test_compiled_step_does_not_recompile():
    from torch._dynamo.testing import CompileCounter
    torch._dynamo.reset()
    learn = learner(tensor_adam, n_trn=4)
    learn.create_opt()
    cnt = CompileCounter()   # a backend that counts compilations and runs the graph eagerly
    learn.opt.step = torch.compile(learn.opt.opt.step, backend=cnt)
    learn.fit_one_cycle(2, 1e-2)
    assert len(set(learn.recorder.hps['lr'])) == 8
    learn.fit_one_cycle(1, 1e-3)   # fastai's fit sets lr (set_hypers) again, then our schedule
    assert cnt.frame_count == 1, f"{cnt.frame_count} compilations"
    # The counter does see a recompilation when the learning rate becomes a new object (as fastai's own set_hyper did):
    for g in learn.opt.opt.param_groups: g['lr'] = 1e-3
    learn.model(torch.randn(4, 1)).sum().backward(); learn.opt.step()
    assert cnt.frame_count == 2
    torch._dynamo.reset()

# Resume: start_epoch continues every fit_* schedule (fine_tune, whose two fits count epochs across both, is tested in test_library.py)

FITS = {'fit_one_cycle':  ((4,), dict(lr_max=slice(1e-4, 1e-2))),
        'fit_flat_cos':   ((4,), dict(lr=slice(1e-4, 1e-2))),
        'fit_sgdr':       ((2, 2), dict(lr_max=1e-2, cycle_mult=1)),
        'fit_warmup_cos': ((4,), dict(lr_max=[1e-3, 1e-2, 1e-2], pct_warmup=0.2)),
        'fit_wsd':        ((4,), dict(lr_max=1e-2, pct_warmup=0.1, pct_decay=0.3, decay='1-sqrt'))}

@pytest.mark.parametrize('fit', FITS)
@pytest.mark.parametrize('save', [False, True])
def test_resume(fit, save, tmp_path):
    n_epoch,k = 4,2
    args,kwargs = FITS[fit]
    full = learner(Adam, path=tmp_path)
    getattr(full, fit)(*args, **kwargs, cbs=SaveModelCallback(every_epoch=True, fname='ep', with_opt=True) if save else None)
    res = learner(Adam, path=tmp_path)
    if save:
        res.load(f'ep_{k-1}')
        assert all(torch.equal(a, b) for a,b in zip(weights(res), torch.load(tmp_path/'models'/f'ep_{k-1}.pth', weights_only=False)['model'].values()))
    getattr(res, fit)(*args, **kwargs, start_epoch=k)
    nb = len(full.dls.train)
    for name,v in full.recorder.hps.items():
        assert len(v) == n_epoch*nb and len(res.recorder.hps[name]) == (n_epoch-k)*nb
        np.testing.assert_array_equal(res.recorder.hps[name], v[k*nb:])
        np.testing.assert_array_equal(res.recorder.group_hps[name], full.recorder.group_hps[name][k*nb:])

# Export

def test_export_and_train_with_its_schedule(tmp_path):
    scheds = {'lr': combined_cos(0.25, 1e-3, 1e-2, 1e-6), 'mom': sched_lin(0.95, 0.85)}
    learn = exportable_learner(tmp_path, cbs=ParamScheduler(scheds))
    learn.fit(1)
    learn.export('model.pkl', pickle_module=pickle)
    learn2 = load_learner(tmp_path/'model.pkl', pickle_module=pickle)
    assert repr(learn2.param_scheduler) == repr(learn.param_scheduler)
    learn2.dls = learn.dls
    learn2.fit(2)
    n = 2*len(learn.dls.train)
    for k in ['lr', 'mom']: np.testing.assert_allclose(learn2.recorder.hps[k], scheds[k](np.arange(n)/n), rtol=1e-12)
    assert learn2.opt.hypers[0]['lr'] == learn2.recorder.hps['lr'][-1]

def test_export_after_interrupted_fit(tmp_path):
    learn = exportable_learner(tmp_path, cbs=[ParamScheduler({'lr': sched_lin(1e-3, 1e-2)}), Boom(KeyboardInterrupt, 2)])
    with pytest.raises(KeyboardInterrupt): learn.fit(1)
    learn.remove_cb(Boom)
    learn.export('model.pkl', pickle_module=pickle)
    state = pickle.loads(pickle.dumps(learn.param_scheduler)).__dict__
    assert not {'_rec', '_cols', '_dst'} & set(state)
    learn2 = load_learner(tmp_path/'model.pkl', pickle_module=pickle)
    learn2.dls = learn.dls
    learn2.fit(1)
    assert len(learn2.recorder.hps['lr']) == len(learn.dls.train)

# Faults

class Boom(Callback):
    "Raise `exc` before training batch `at`"
    order = 61
    def __init__(self, exc, at): self.exc,self.at,self.i = exc,at,0
    def before_fit(self): self.i = 0
    def before_batch(self):
        if self.training:
            self.i += 1
            if self.i == self.at: raise self.exc('boom')

@pytest.mark.parametrize('exc', [RuntimeError, KeyboardInterrupt])
def test_fault_mid_fit_leaves_learner_usable(exc):
    learn = learner(Adam)
    with pytest.raises(exc): learn.fit_one_cycle(2, 1e-2, cbs=Boom(exc, 3))
    assert not any(isinstance(cb, (ParamScheduler, Boom)) for cb in learn.cbs)
    ref = learner(Adam); ref.fit_one_cycle(2, 1e-2)
    learn.fit_one_cycle(2, 1e-2)
    for k,v in ref.recorder.hps.items(): np.testing.assert_array_equal(learn.recorder.hps[k], v)

@pytest.mark.parametrize('exc', [RuntimeError, KeyboardInterrupt])
def test_fault_with_attached_scheduler(exc):
    sched = ParamScheduler({'lr': sched_lin(1e-3, 1e-2)})
    learn = learner(Adam, cbs=[sched])
    with pytest.raises(exc): learn.fit(2, cbs=Boom(exc, 3))
    learn.fit(2)
    n = 2*len(learn.dls.train)
    np.testing.assert_allclose(learn.recorder.hps['lr'], sched.scheds['lr'](np.arange(n)/n))
    assert not hasattr(sched, '_rec')

def test_failure_in_before_fit_is_clean():
    learn = learner(Adam)
    with pytest.raises(ValueError): learn.fit(1, cbs=ParamScheduler({'lr': sched_lin(1e-3, 1e-2), 'oops': sched_lin(0, 1)}))
    assert not any(isinstance(cb, ParamScheduler) for cb in learn.cbs)
    sched = ParamScheduler({'lr': sched_lin(1e-3, 1e-2), 'mom': sched_lin([0.9]*2, 0.8)})
    learn.add_cb(sched)
    with pytest.raises(ValueError, match='2 per-group values'): learn.fit(1)
    assert not hasattr(sched, '_rec') and not hasattr(sched, 'hps')
    learn.remove_cb(sched)
    learn.fit_one_cycle(1)
    assert len(learn.recorder.hps['lr']) == len(learn.dls.train)

# Bad input: ValueError before any weight or optimizer change, with 3 parameter groups

@pytest.mark.parametrize('kwargs,name', [
    (dict(lr_max=[1e-3, 1e-2]), 'lr_max'), (dict(lr_max=np.array([1e-3, float('nan'), 1e-2])), 'lr_max'),
    (dict(lr_max=[1e-3, -1e-2, 1e-2]), 'lr_max'), (dict(lr_max=slice(-1e-4, 1e-2)), 'lr_max.start'),
    (dict(lr_max=slice(1e-4, float('nan'))), 'lr_max.stop'), (dict(lr_max=slice(1e-4, 1e-2, 2)), 'lr_max'),
    (dict(wd=[0.1, 0.1]), 'wd'), (dict(pct_start=float('nan')), 'pct_start'), (dict(div=-1.), 'div'),
    (dict(start_epoch=-1), 'start_epoch'), (dict(start_epoch=True), 'start_epoch'),
])
def test_bad_args_three_groups(kwargs, name):
    learn = learner(torch_opt(torch.optim.AdamW))
    learn.create_opt()
    w,pgs = weights(learn),[{k:v for k,v in g.items() if k != 'params'} for g in learn.opt.opt.param_groups]
    with pytest.raises(ValueError, match=f'`{name}`'): learn.fit_one_cycle(2, **kwargs)
    assert all(torch.equal(a, b) for a,b in zip(w, weights(learn)))
    assert [{k:v for k,v in g.items() if k != 'params'} for g in learn.opt.opt.param_groups] == pgs

def test_callable_with_wrong_group_count():
    learn = learner()
    with pytest.raises(ValueError, match="2 per-group values but the optimizer has 3"):
        learn.fit(1, cbs=ParamScheduler({'lr': lambda p: np.array([1e-3, 1e-2])*(1-p)}))

def test_values_exact_when_pct_train_is_moved_or_tables_are_short(monkeypatch):
    "The batch-ahead tables are only a cache: in chunks of any size, or when another callback moves pct_train, values are the schedule's"
    import fastai_anneal.callback as fc  # noqa
    class Jump(Callback):
        order = 50
        def before_batch(self):
            if self.training and self.iter == 2: self.learn.pct_train = 0.9
    s = combined_cos(0.25, np.array([1e-4, 1e-3, 1e-2]), 1e-2, 1e-6)
    ref = learner(n_trn=7); ref.fit(2, cbs=ParamScheduler({'lr': s}))
    monkeypatch.setattr(fc, '_CHUNK', 3)
    short = learner(n_trn=7); short.fit(2, cbs=ParamScheduler({'lr': s}))
    np.testing.assert_allclose(short.recorder.group_hps['lr'], ref.recorder.group_hps['lr'], rtol=1e-12)
    np.testing.assert_allclose(ref.recorder.group_hps['lr'], s(np.arange(14)/14), rtol=1e-12)
    jump = learner(n_trn=7); jump.fit(2, cbs=[ParamScheduler({'lr': s}), Jump()])
    g,pos = jump.recorder.group_hps['lr'],np.arange(14)/14
    pos[2:7] = 0.9 + np.arange(5)/14; pos[9:14] = 0.9 + np.arange(5)/14  # jumps to 0.9 at batch 2 of each epoch, then steps on
    np.testing.assert_allclose(g, s(pos), rtol=1e-9)

def test_subclass_written_for_fastai():
    "A subclass written for fastai's ParamScheduler (like fastai's own LRFinder) drives it through `_update_val`"
    class Ramp(ParamScheduler):
        def before_batch(self): self._update_val(self.train_iter/10)
    learn = learner(n_trn=7)
    learn.fit(1, cbs=Ramp({'lr': sched_exp(1e-5, 1e-1)}))
    n = len(learn.dls.train)
    np.testing.assert_allclose(learn.recorder.hps['lr'], [1e-5*(1e4)**(i/10) for i in range(n)], rtol=1e-12)
