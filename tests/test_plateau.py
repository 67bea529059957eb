"""ScaleOnPlateau and CooldownOnPlateau: torch's decisions to the letter, a replaced optimizer, resumed fits
(`start_epoch`, `reset_on_fit=False`, `state_dict` mid-epoch), lr_find/get_preds, arguments refused before any
batch, and the record `plot_sched` draws."""
import math, pickle, warnings
import matplotlib.pyplot as plt
import numpy as np, pytest, torch
from hypothesis import given, settings, strategies as st
from fastai.callback.core import Callback, CancelBatchException
from fastai.metrics import ValueMetric
from fastai.test_utils import synth_learner
from fastai_anneal.all import *

def fit(learn, n, **kw):
    with warnings.catch_warnings(), learn.no_bar(), learn.no_logging():
        warnings.simplefilter('ignore')
        learn.fit(n, **kw)

def seq_learner(seq, **kw):
    "A learner (5 training batches) whose metric `fake` takes the values `seq`, one per epoch"
    learn = synth_learner(n_trn=5, **kw)
    learn.metrics = [ValueMetric(lambda: seq[learn.epoch], 'fake')]
    return learn

def lr(learn): return learn.opt.hypers[-1]['lr']
def hps(learn): return learn.recorder.__dict__.get('hps', {})  # none without a scheduler

# ---------------------------------------------------------------- torch's rule, to the letter

VALUES = st.one_of(st.floats(-10, 10), st.sampled_from([math.nan, math.inf, -math.inf, 0., -0.]))

@settings(max_examples=300, deadline=None)
@given(st.lists(VALUES, min_size=1, max_size=30), st.sampled_from(['min', 'max']), st.sampled_from(['rel', 'abs']),
       st.integers(0, 3), st.integers(0, 2), st.sampled_from([0., 1e-4, 0.1, 1., 2.]), st.sampled_from([0.1, 0.5]),
       st.sampled_from([0., 1e-3, 0.2, 2.]))
def test_decisions_and_values_are_torch(vals, mode, tmode, patience, cooldown, threshold, factor, min_lr):
    "torch's ReduceLROnPlateau (eps=0) on metric sequences with negatives, NaN and inf, an lr of 1 scaled"
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode, factor, patience, threshold, tmode, cooldown,
                                                     min_lr=min_lr, eps=0.)
    cb = ScaleOnPlateau('valid_loss', mode, factor, patience, threshold, tmode, cooldown, min_lr)
    for v in vals:
        ref.step(v)
        cb.step(v)
        assert cb._scaled(1.) == pytest.approx(opt.param_groups[0]['lr'], rel=1e-12)
        assert (cb.best, cb.num_bad, cb.cooldown_left) == (ref.best, ref.num_bad_epochs, ref.cooldown_counter) or \
               (math.isnan(cb.best) and math.isnan(ref.best))

def test_nan_first_metric_is_never_the_best():
    "A NaN first epoch is a bad epoch (torch); the improving epochs after it are not cut"
    learn = seq_learner([math.nan, 5., 4., 3., 2.], lr=1e-2)
    cb = ScaleOnPlateau('fake', 'min', patience=1)
    fit(learn, 5, lr=1e-2, cbs=cb)
    assert cb.scale == 1. and cb.best == 2. and lr(learn) == 1e-2

def test_min_lr_above_the_lr_leaves_it():
    "torch: new = max(old*factor, min_lr), set only if lower; a value below `min_lr` is never raised to it"
    learn = synth_learner(n_trn=5)
    cb = ScaleOnPlateau(patience=0, threshold=10., factor=0.5, min_lr=1e-2)
    fit(learn, 3, lr=1e-3, cbs=cb)
    assert cb.scale == 0.125 and lr(learn) == 1e-3
    fit(learn := synth_learner(n_trn=5), 3, lr=4e-2, cbs=ScaleOnPlateau(patience=0, threshold=10., factor=0.5, min_lr=1e-2))
    assert lr(learn) == pytest.approx(1e-2)  # 4e-2 -> 2e-2 -> 1e-2 -> 1e-2

def test_names_are_distinct():
    with pytest.raises(ValueError, match='`names`'): ScaleOnPlateau(names=['lr', 'lr'])

# ---------------------------------------------------------------- a replaced optimizer

class Reload(Callback):
    "At the end of epoch `at` (before the plateau callbacks judge it), load the state saved at the start of the fit"
    order = 55
    def __init__(self, at): self.at = at
    def before_fit(self): self.learn.save('start', with_opt=True)
    def after_epoch(self):
        if self.epoch == self.at: self.learn.load('start', with_opt=True)

def reload_cases():
    def scale(): return ScaleOnPlateau('fake', 'min', patience=0, threshold=10., factor=0.5)
    def cool(): return CooldownOnPlateau('fake', patience=1, duration='2ep', decay='linear')
    return {'scale, unscheduled lr': (lambda: [scale()], 0), 'scale, scheduled lr': (lambda: [ParamScheduler({'lr': sched_cos(1e-2, 1e-3)}), scale()], 0),
            'cooldown': (lambda: [cool()], 2), 'cooldown on a schedule': (lambda: [ParamScheduler({'lr': sched_lin(1e-2, 2e-2)}), cool()], 2)}

@pytest.mark.parametrize('case', list(reload_cases()))
def test_optimizer_reloaded_mid_fit(case, tmp_path):
    "After `learn.load(with_opt=True)` the plateau callbacks write to the new optimizer: the lrs of an uninterrupted fit"
    make,at = reload_cases()[case]
    seq = [3.]*4
    ref = seq_learner(seq, path=tmp_path)
    fit(ref, 4, lr=1e-2, cbs=make())
    learn = seq_learner(seq, path=tmp_path)
    fit(learn, 4, lr=1e-2, cbs=make() + [Reload(at)])
    np.testing.assert_allclose(learn.recorder.lrs, ref.recorder.lrs, rtol=1e-12)
    np.testing.assert_allclose(hps(learn).get('lr', []), hps(ref).get('lr', []), rtol=1e-12)

# ---------------------------------------------------------------- resumed: start_epoch, a carried scale

def test_carried_scale_reaches_an_unscheduled_lr():
    "A scale loaded (or carried with reset_on_fit=False) applies from the first batch of a plain fit"
    cb = ScaleOnPlateau(patience=0, threshold=10., factor=0.5)
    fit(synth_learner(n_trn=5), 1, lr=1e-2, cbs=cb)
    again = ScaleOnPlateau(patience=0, threshold=10., factor=0.5, reset_on_fit=False)
    again.load_state_dict(pickle.loads(pickle.dumps(cb.state_dict())))
    learn = synth_learner(n_trn=5)
    fit(learn, 1, lr=1e-2, cbs=again)
    np.testing.assert_allclose(learn.recorder.lrs, [5e-3]*5, rtol=1e-12)
    assert lr(learn) == pytest.approx(2.5e-3)

def test_carried_scale_is_not_applied_twice():
    "Fit after fit with reset_on_fit=False: `fit` sets the lr afresh (scaled again), `mom` keeps its cut value"
    learn = synth_learner(n_trn=5)
    cb = ScaleOnPlateau(patience=0, threshold=10., factor=0.5, names=['lr', 'mom'], reset_on_fit=False)
    learn.add_cb(cb)
    fit(learn, 1, lr=1e-2)
    assert learn.opt.hypers[0]['mom'] == pytest.approx(0.45)
    fit(learn, 1, lr=1e-2)
    np.testing.assert_allclose(learn.recorder.lrs, [5e-3]*5, rtol=1e-12)
    assert learn.opt.hypers[0]['mom'] == pytest.approx(0.225) and cb.scale == 0.25

def plateau_cbs():
    return {'scale': lambda: ScaleOnPlateau('fake', 'min', patience=0, threshold=10., factor=0.5),
            'cooldown': lambda: CooldownOnPlateau('fake', patience=1, duration='1ep')}

@pytest.mark.parametrize('name', list(plateau_cbs()))
def test_start_epoch(name):
    "Epochs skipped by start_epoch have no values: not judged (they raised IndexError)"
    seq = [3.]*4
    learn = seq_learner(seq)
    cb = plateau_cbs()[name]()
    fit(learn, 4, lr=1e-2, cbs=cb, start_epoch=2)
    if name == 'scale': assert cb.scales == [1.]*5 + [0.5]*5
    else: assert cb.plateau_epoch == 3 and not cb.lrs  # epoch 2 the best, epoch 3 a plateau at the last epoch

# ---------------------------------------------------------------- lr_find and get_preds

def all_cbs():
    return {**plateau_cbs(), 'scheduler': lambda: ParamScheduler({'lr': sched_lin(1e-3, 1e-2)})}

@pytest.mark.parametrize('name', list(all_cbs()))
def test_attached_callbacks_sit_out_lr_find_and_get_preds(name):
    ref = seq_learner([3.]*20)
    with ref.no_bar(), ref.no_logging(): ref.lr_find(num_it=10, show_plot=False)
    learn = seq_learner([3.]*20, cbs=all_cbs()[name]())
    with learn.no_bar(), learn.no_logging(): learn.lr_find(num_it=10, show_plot=False)
    assert learn.recorder.lrs == ref.recorder.lrs
    fit(learn, 2, lr=1e-2)
    before = {k: list(v) for k,v in hps(learn).items()}
    with learn.no_bar(): learn.get_preds()
    assert {k: list(v) for k,v in hps(learn).items()} == before
    fit(learn, 2, lr=1e-2)  # still runs
    assert len(learn.recorder.lrs) == 10

# ---------------------------------------------------------------- arguments refused before any batch

class Count(Callback):
    def before_fit(self): self.n = 0
    def before_batch(self): self.n += 1

@pytest.mark.parametrize('make,match', [
    (lambda: CooldownOnPlateau(monitor='time'), '`monitor`'), (lambda: ScaleOnPlateau(monitor='time'), '`monitor`'),
    (lambda: CooldownOnPlateau(lr_min=[0., 1e-4]), '`lr_min`'), (lambda: ScaleOnPlateau('accuracy'), '`monitor`')])
def test_refused_at_before_fit(make, match):
    learn = synth_learner(n_trn=5)
    with pytest.raises(ValueError, match=match): fit(learn, 2, cbs=[make(), count := Count()])
    assert count.n == 0
    fit(learn, 1)

def test_comp_refused_at_construction():
    with pytest.raises(TypeError, match='`comp`'): CooldownOnPlateau(comp='less')
    CooldownOnPlateau(comp=np.less)

def test_lr_below_lr_min_at_the_plateau_is_kept():
    learn = seq_learner([3.]*4)
    cb = CooldownOnPlateau('fake', patience=1, lr_min=[1e-2])
    fit(learn, 4, lr=1e-3, cbs=cb)
    assert cb.plateau_epoch == 1 and np.allclose(cb.lrs, 1e-3)

# ---------------------------------------------------------------- the record

def test_cooldown_in_a_plain_fit_is_recorded_for_plot_sched():
    learn = seq_learner([3.]*4)
    learn.recorder.hps = {'mom': [0.9]}  # a record from an earlier fit, not this one's
    cb = CooldownOnPlateau('fake', patience=1, duration='1ep', decay='linear')
    fit(learn, 4, lr=1e-2, cbs=cb)
    assert list(learn.recorder.hps) == ['lr'] and learn.recorder.group_hps['lr'].shape == (15, 1)
    np.testing.assert_allclose(learn.recorder.hps['lr'], [1e-2]*10 + [1e-2*(1 - i/5) for i in range(5)])
    np.testing.assert_allclose(learn.recorder.hps['lr'], learn.recorder.lrs)
    plt.close(learn.recorder.plot_sched(return_fig=True))

# ---------------------------------------------------------------- state_dict mid-epoch: resume ends as an uninterrupted fit

class Stop(Exception): pass

class Interrupt(Callback):
    "Raise `Stop` before training batch `k` of the fit (counted over the fit)"
    order = 0
    def __init__(self, k): self.k = k
    def before_batch(self):
        if self.training and self.train_iter == self.k: raise Stop('interrupted')

class Skip(Callback):
    "Cancel the training batches of epoch `epoch` before batch `k`: the interrupted fit ran them"
    order = 0
    def __init__(self, epoch, k): self.epoch_,self.k = epoch,k
    def before_batch(self):
        if self.training and self.epoch == self.epoch_ and self.iter < self.k: raise CancelBatchException()

class Load(Callback):
    "Restore `states` into `cbs` after their `before_fit` (this runs after them), before the next batch"
    order = 100
    def __init__(self, cbs, states): self.cbs_,self.states = cbs,states
    def before_fit(self):
        for cb,d in zip(self.cbs_, self.states): cb.load_state_dict(d)

SEQ = [5., 4., 4., 4., 3., 3., 3., 3.]

def stack(with_sched):
    cbs = [ScaleOnPlateau('fake', 'min', patience=0, threshold=0., factor=0.5, names=['lr', 'mom']),
           CooldownOnPlateau('fake', np.less, patience=2, duration='3ep', decay='linear')]
    if with_sched: cbs.insert(0, ParamScheduler({'lr': sched_cos(1e-2, 1e-3), 'mom': sched_lin(0.95, 0.85)}))
    return cbs

@pytest.mark.parametrize('with_sched', [True, False])
@pytest.mark.parametrize('k', [2, 7, 10, 23, 27])
def test_state_dict_mid_epoch_resumes_exactly(with_sched, k):
    "Half a fit, state_dict, a new learner, before_fit, load_state_dict, the rest: as one uninterrupted fit"
    full_cbs = stack(with_sched)
    full = seq_learner(SEQ)
    fit(full, 8, lr=1e-2, cbs=full_cbs)
    cbs = stack(with_sched)
    learn = seq_learner(SEQ)
    with pytest.raises(Stop): fit(learn, 8, lr=1e-2, cbs=cbs + [Interrupt(k)])
    states = pickle.loads(pickle.dumps([cb.state_dict() for cb in cbs]))
    res_cbs = stack(with_sched)
    res = seq_learner(SEQ)
    e,j = divmod(k, 5)
    fit(res, 8, lr=1e-2, cbs=res_cbs + [Skip(e, j), Load(res_cbs, states)], start_epoch=e)
    assert list(res.recorder.hps) == list(full.recorder.hps)
    for n,v in full.recorder.hps.items():
        np.testing.assert_array_equal(res.recorder.hps[n], v)
        np.testing.assert_array_equal(res.recorder.group_hps[n], full.recorder.group_hps[n])
    a,b = res_cbs[-2],full_cbs[-2]
    assert (a.scales, a.scale, a.best, a.num_bad) == (b.scales, b.scale, b.best, b.num_bad)
    a,b = res_cbs[-1],full_cbs[-1]
    assert (a.lrs, a.plateau_epoch, a.best, a.wait) == (b.lrs, b.plateau_epoch, b.best, b.wait)
    assert lr(res) == lr(full) and res.opt.hypers[-1]['mom'] == full.opt.hypers[-1]['mom']

def test_load_state_dict_outside_a_fit_is_refused():
    with pytest.raises(ValueError, match='before_fit'): ParamScheduler({'lr': sched_lin(1., 0.)}).load_state_dict({'rec': {'lr': []}})

# ---------------------------------------------------------------- interplay

class Boom(Callback):
    "Raise `RuntimeError` at the first batch (training or not)"
    order = 0
    def before_batch(self): raise RuntimeError('boom')

@pytest.mark.parametrize('name', list(all_cbs()))
def test_interrupted_get_preds_leaves_attached_callbacks_on(name):
    "Sitting out does not turn `run` off: an error in get_preds would have left the callback off for every later fit"
    learn = seq_learner([3.]*20, cbs=all_cbs()[name]())
    with pytest.raises(RuntimeError), learn.no_bar(): learn.get_preds(cbs=Boom())
    fit(learn, 2, lr=1e-2)
    assert len(learn.recorder.__dict__.get('hps', {}).get('lr', [])) == (10 if name != 'scale' else 0)
    if name == 'scale': assert len(learn.scale_on_plateau.scales) == 10

def test_validate_is_not_an_epoch():
    "learn.validate() runs before_fit..after_fit: the plateau callbacks do not judge it (nor cut, nor stop)"
    learn = seq_learner([3.]*20)
    scale = ScaleOnPlateau('fake', 'min', patience=0, threshold=10., factor=0.5, names=['mom'], reset_on_fit=False)
    cool = CooldownOnPlateau('fake', patience=0, reset_on_fit=False)
    learn.add_cbs([scale, cool])
    fit(learn, 1, lr=1e-2)
    state = scale.state_dict(), cool.best
    mom = learn.opt.hypers[0]['mom']
    for _ in range(3): learn.validate()
    assert scale.state_dict() == state[0] and cool.best == state[1] and learn.opt.hypers[0]['mom'] == mom

def test_export_after_interrupted_fit_with_plateau_callbacks(tmp_path):
    import sys; sys.path.insert(0, str(__import__('pathlib').Path(__file__).parent))
    from test_integration import exportable_learner
    learn = exportable_learner(tmp_path, cbs=[ScaleOnPlateau(patience=0, threshold=10.), CooldownOnPlateau(patience=0)])
    with pytest.raises(RuntimeError): fit(learn, 2, cbs=Boom())
    learn.export('model.pkl', pickle_module=pickle)
    state = pickle.loads(pickle.dumps(learn.scale_on_plateau)).__dict__
    assert not {'_homes', '_scales', '_used'} & set(state)
    from fastai.learner import load_learner
    learn2 = load_learner(tmp_path/'model.pkl', pickle_module=pickle)
    learn2.dls = learn.dls
    fit(learn2, 2, lr=1e-2)
    assert len(learn2.scale_on_plateau.scales) == 2*len(learn.dls.train)

def test_tensor_lr_cut_once_in_place():
    from functools import partial
    from fastai.learner import Learner
    from fastai.losses import MSELossFlat
    from fastai.optimizer import OptimWrapper
    from fastai.test_utils import RegModel, synth_dbunch
    learn = Learner(synth_dbunch(n_train=5), RegModel(), loss_func=MSELossFlat(), opt_func=partial(OptimWrapper, opt=torch.optim.AdamW))
    learn.create_opt()
    t = torch.tensor(1e-2)
    learn.opt.opt.param_groups[0]['lr'] = t
    learn.lr = 1e-2
    class Probe(Callback):  # the recorder keeps the tensor itself, filled in place: read its value each batch
        def before_fit(self): self.lrs = []
        def after_batch(self):
            if self.training: self.lrs.append(float(self.opt.opt.param_groups[0]['lr']))
    fit(learn, 3, cbs=[ScaleOnPlateau(patience=0, threshold=10., factor=0.5), probe := Probe()])
    assert learn.opt.opt.param_groups[0]['lr'] is t and float(t) == pytest.approx(1e-2/8, rel=1e-6)
    np.testing.assert_allclose(probe.lrs, [1e-2]*5 + [5e-3]*5 + [2.5e-3]*5, rtol=1e-6)

def test_fault_mid_fit_then_a_clean_fit():
    def cbs(): return [ParamScheduler({'lr': sched_cos(1e-2, 1e-3)}), ScaleOnPlateau('fake', 'min', patience=0, threshold=10., factor=0.5),
                       CooldownOnPlateau('fake', np.less, patience=2, duration='1ep')]
    ref = seq_learner([3.]*6, cbs=cbs())
    fit(ref, 6, lr=1e-2)
    learn = seq_learner([3.]*6, cbs=cbs())
    class Late(Boom):
        def before_batch(self):
            if self.train_iter == 7: raise RuntimeError('boom')
    with pytest.raises(RuntimeError): fit(learn, 6, lr=1e-2, cbs=Late())
    fit(learn, 6, lr=1e-2)
    for n,v in ref.recorder.hps.items(): np.testing.assert_array_equal(learn.recorder.hps[n], v)

@pytest.mark.parametrize('make', [lambda: ScaleOnPlateau('valid_loss', patience=0),
                                  lambda: CooldownOnPlateau('valid_loss', patience=0, duration='2ba')])
def test_state_dict_survives_pickling(make):
    "fastcore's `Stateful` gives every callback an instance `_state = {}` on unpickling: it must not hide what we save"
    learn = synth_learner(n_trn=4)
    cb = make()
    with learn.no_bar(), learn.no_logging(): learn.fit(3, 1e-2, cbs=cb)
    d = cb.state_dict()
    assert d and pickle.loads(pickle.dumps(cb)).state_dict().keys() == d.keys()
    fresh = make()
    fresh.load_state_dict(pickle.loads(pickle.dumps(d)))
    assert fresh.state_dict().keys() == d.keys()
