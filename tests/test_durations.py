"""Durations with units ('500ba' batches, '2ep' epochs) wherever a fraction of training is accepted: parsing, `resolve`,
composition in `combine_scheds`, JSON/repr/pickle, and resolution by ParamScheduler, the fit_* methods and AnnealLR"""
import json, pickle
import numpy as np, pytest, torch
from fastai.callback.core import Callback
from fastai.test_utils import synth_learner
from fastai_anneal.all import *
from fastai_anneal.core import as_schedule, check_duration, duration_steps, is_duration

BAD = ['10', 'ba', 'ep', '-3ba', '+3ba', '1.5ba', 'nanep', 'infba', '1e3ba', '', ' 1ba', '1ba ', '1 ba', '1BA', '01ba', '3 ep', '3epochs', 'rest ba']

def weights(learn): return [p.detach().clone() for p in learn.model.parameters()]
def same(a, b): return all(torch.equal(x, y) for x,y in zip(a, b))
def grid(n=41): return np.linspace(0, 1, n)

# Parsing

@pytest.mark.parametrize('v', ['0ba', '1ba', '500ba', '2ep', '10ep', '0ep'])
def test_good_durations(v):
    assert is_duration(v) and check_duration('pct', v) == v

@pytest.mark.parametrize('bad', BAD)
def test_bad_strings_refused_everywhere(bad):
    for make in [lambda: combine_scheds([bad, None], [sched_no(1., 1.)]*2), lambda: warmup(sched_cos(1., 0.), bad),
                 lambda: one_cycle(1e-2, pct_start=bad), lambda: warmup_cos(1e-2, bad), lambda: wsd(1e-2, bad, 0.2),
                 lambda: wsd(1e-2, 0.1, bad), lambda: combined_cos(bad, 1., 2., 0.), lambda: CooldownOnPlateau(duration=bad)]:
        with pytest.raises(ValueError, match=repr(bad).replace('+', r'\+').replace('.', r'\.')): make()

def test_non_strings_are_fractions():
    with pytest.raises(ValueError, match='pct'): warmup_cos(1., 1.5)
    with pytest.raises(TypeError, match='pct'): warmup_cos(1., None)
    assert not is_duration(3) and not is_duration(None)

def test_duration_steps():
    assert duration_steps('d', '2ep', 100, 30) == 60
    assert duration_steps('d', '7ba', 100) == 7
    assert duration_steps('d', 0.25, 100) == 25
    with pytest.raises(ValueError, match="'2ep'.*steps_per_epoch"): duration_steps('d', '2ep', 100)
    with pytest.raises(ValueError, match="'101ba'.*longer than the run"): duration_steps('d', '101ba', 100)

# resolve

def test_resolve_returns_plain_fractions():
    s = warmup(wsd(1e-2, '1ep', '20ba', '1-sqrt'), '5ba', 'cos')
    r = s.resolve(100, steps_per_epoch=10)  # the wsd runs over the 95 steps after the warmup
    assert r.pct == 0.05 and r.sched.pct_warmup == 10/95 and r.sched.pct_decay == 20/95
    np.testing.assert_array_equal(r(grid()), warmup(wsd(1e-2, 10/95, 20/95, '1-sqrt'), 0.05, 'cos')(grid()))
    assert r.resolve(7) is r  # nothing left to resolve

@pytest.mark.parametrize('s', [sched_lin(1., 0.), one_cycle(1e-2), sgdr(2, 1, 1e-2), wsd(1e-2, 0.1, 0.2),
                               combine_scheds([0.5, 0.5], [sched_no(1., 1.), sched_cos(1., 0.)]), as_schedule(lambda p: 1-p)])
def test_resolve_without_units_is_identity(s):
    assert s.resolve(10) is s and s.resolve(10, 3) is s

@pytest.mark.parametrize('n_steps,spe', [(0, None), (-1, None), (1.5, None), (10, 0), (10, 2.5), (True, None)])
def test_resolve_bad_run(n_steps, spe):
    with pytest.raises(ValueError, match='n_steps|steps_per_epoch'): warmup_cos(1., '1ba').resolve(n_steps, spe)

@pytest.mark.parametrize('s,dur', [(warmup_cos(1., '3ba'), '3ba'), (one_cycle(1., pct_start='1ep'), '1ep'), (wsd(1., '2ba', '1ep'), '1ep'),
                                   (combine_scheds([0.5, 0.5], [warmup(sched_no(1., 1.), '2ba'), sched_no(1., 1.)]), '2ba')])
def test_unresolved_refuses_evaluation(s, dur):
    for pos in [0.5, 0, np.array([0., 0.5]), torch.tensor([0.1, 0.2]), torch.tensor(0.3)]:
        with pytest.raises(ValueError, match=f"'{dur}'.*resolve"): s(pos)

def test_epochs_need_epoch_length():
    with pytest.raises(ValueError, match="'1ep'.*steps_per_epoch"): wsd(1., '1ep', 0.2).resolve(100)

@pytest.mark.parametrize('s,dur', [(warmup_cos(1., '30ba'), '30ba'), (wsd(1., '1ep', 0.2), '1ep'), (one_cycle(1., pct_start='3ep'), '3ep'),
                                   (wsd(1., '15ba', '15ba'), '15ba'), (one_cycle(1., pct_start='21ba', three_phase=True), '21ba')])
def test_longer_than_run(s, dur):
    with pytest.raises(ValueError, match=repr(dur)): s.resolve(20, 20)

def test_warmup_of_whole_run_refused():
    with pytest.raises(ValueError, match='pct'): warmup_cos(1., '20ba').resolve(20)

# Composition in combine_scheds

def test_mixed_units_compose():
    f = combine_scheds(['1ep', 0.25, None, '10ba'], [sched_lin(0., 1.), sched_no(1., 1.), sched_cos(1., 0.1), sched_no(0.1, 0.1)])
    assert f.resolve(100, 20).pcts == pytest.approx([0.2, 0.25, 0.45, 0.1], abs=1e-15)
    g = combine_scheds(['1ep', 'rest'], [sched_lin(0., 1.), sched_cos(1., 0.)])
    np.testing.assert_array_equal(g.resolve(40, 10)(grid()), combine_scheds([0.25, 0.75], [sched_lin(0., 1.), sched_cos(1., 0.)])(grid()))
    assert combine_scheds(['40ba', '60ba'], [sched_no(1., 1.)]*2).resolve(100).pcts == [0.4, 0.6]  # units adding up to the run

def test_composition_errors():
    two = [sched_no(1., 1.)]*2
    with pytest.raises(ValueError, match='rest'): combine_scheds([None, 'rest'], two)
    with pytest.raises(ValueError, match=r"'40ba'.*add up to the run"): combine_scheds(['40ba', '50ba'], two).resolve(100)
    with pytest.raises(ValueError, match=r"'60ba'.*more than the run"): combine_scheds(['60ba', 0.5, None], [sched_no(1., 1.)]*3).resolve(100)
    with pytest.raises(ValueError, match='at most 1'): combine_scheds([0.7, 0.6, None], [sched_no(1., 1.)]*3)
    assert combine_scheds([0.7, None], two).pcts == [0.7, pytest.approx(0.3)]

# JSON, repr, pickle

UNIT_SCHEDS = [warmup(sched_cos(1., 0.), '500ba'), one_cycle([1e-3, 1e-2], pct_start='2ep'), warmup_cos(1e-2, '1ep', 1e-4),
               wsd(1e-2, '100ba', '3ep', '1-sqrt'), combine_scheds(['1ep', None, 0.1], [sched_lin(0., 1.), sched_no(1., 1.), sched_cos(1., 0.)]),
               combined_cos('50ba', 1e-3, 1e-2, 0.)]

@pytest.mark.parametrize('s', UNIT_SCHEDS, ids=repr)
def test_units_survive_json_repr_pickle(s):
    d = json.loads(json.dumps(s.to_dict()))
    for g in [sched_from_dict(d), eval(repr(s)), pickle.loads(pickle.dumps(s))]:
        assert repr(g) == repr(s) and g.to_dict() == s.to_dict()
        np.testing.assert_array_equal(g.resolve(1000, 100)(grid()), s.resolve(1000, 100)(grid()))
    assert any(u in repr(s) for u in ["'500ba'", "'2ep'", "'1ep'", "'100ba'", "'50ba'"])

def test_preview_and_plot_scheds_draw_units_for_a_run():
    s = wsd(1., '10ba', '2ep')
    ax = s.preview(100, steps_per_epoch=20, return_fig=True).axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), wsd(1., 0.1, 0.4)(np.arange(100)/100))
    ax = plot_scheds({'s': s, 'f': sched_lin(1., 0.)}, n=11, n_steps=100, steps_per_epoch=20, return_fig=True).axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), wsd(1., 0.1, 0.4)(np.linspace(0, 1, 11)))
    with pytest.raises(ValueError, match="'10ba'"): plot_scheds({'s': s})
    with pytest.raises(ValueError, match="'2ep'"): s.preview(100)

# ParamScheduler

class LRProbe(Callback):
    "The lr each optimizer step used"
    order = 61
    def before_fit(self): self.lrs = []
    def before_step(self): self.lrs.append(float(self.opt.hypers[-1]['lr']))

def positions(n_epoch, n_iter): return np.arange(n_epoch*n_iter) / (n_epoch*n_iter)

@pytest.mark.parametrize('dur,pct', [('7ba', 7/15), ('1ep', 1/3), ('0ba', 0.)])
def test_param_scheduler_resolves_per_fit(dur, pct):
    learn = synth_learner(n_trn=5)
    n = len(learn.dls.train)
    ps,probe = ParamScheduler({'lr': warmup_cos(1e-2, dur), 'mom': sched_no(0.9, 0.9)}),LRProbe()
    with learn.no_bar(), learn.no_logging(): learn.fit(3, cbs=[ps, probe])
    np.testing.assert_allclose(probe.lrs, warmup_cos(1e-2, pct)(positions(3, n)), atol=1e-12)
    np.testing.assert_allclose(learn.recorder.hps['lr'], probe.lrs)
    assert ps.scheds['lr'].pct_warmup == dur  # the callback keeps the schedule as given...
    with learn.no_bar(), learn.no_logging(): learn.fit(4, cbs=[ps, probe])  # ...and resolves it again for another run
    np.testing.assert_allclose(probe.lrs, warmup_cos(1e-2, pct*3/4)(positions(4, n)), atol=1e-12)

def test_param_scheduler_refuses_before_any_weight_changes():
    learn = synth_learner(n_trn=5)
    w = weights(learn)
    for s,dur in [(warmup_cos(1e-2, '16ba'), '16ba'), (wsd(1e-2, '4ep', 0.), '4ep')]:
        with pytest.raises(ValueError, match=repr(dur)):
            with learn.no_bar(), learn.no_logging(): learn.fit(3, cbs=ParamScheduler({'lr': s}))
        assert same(w, weights(learn)) and not any(isinstance(cb, ParamScheduler) for cb in learn.cbs)
    with learn.no_bar(), learn.no_logging(): learn.fit(1)  # still usable

# fit_* methods: a duration gives the run of the fraction it stands for

FITS = [('fit_one_cycle', 'pct_start', '4ba', 0.2), ('fit_flat_cos', 'pct_start', '3ep', 0.75), ('fit_warmup_cos', 'pct_warmup', '1ep', 0.25),
        ('fit_wsd', 'pct_warmup', '2ba', 0.1), ('fit_wsd', 'pct_decay', '1ep', 0.25)]

@pytest.mark.parametrize('meth,arg,dur,pct', FITS)
def test_fit_methods_take_durations(meth, arg, dur, pct):
    runs = []
    for v in [dur, pct]:
        learn = synth_learner(n_trn=5)
        probe = LRProbe()
        with learn.no_bar(), learn.no_logging(): getattr(learn, meth)(4, 1e-2, **{arg: v}, cbs=probe)
        runs.append((probe.lrs, learn.recorder.hps['lr']))
    assert len(runs[0][0]) == 20
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(runs[0][1], runs[1][1], rtol=1e-12, atol=1e-15)

@pytest.mark.parametrize('meth,arg', [(m, a) for m,a,_,_ in FITS])
def test_fit_methods_refuse_bad_durations(meth, arg):
    learn = synth_learner(n_trn=5)
    w = weights(learn)
    for bad,match in [('21ba', "'21ba'.*longer"), ('6ep', "'6ep'.*longer"), ('1.5ba', r"'1\.5ba'"), ('10', "'10'")]:
        with pytest.raises(ValueError, match=match): getattr(learn, meth)(4, 1e-2, **{arg: bad})
        assert same(w, weights(learn))

def test_resume_with_durations():
    full,res = synth_learner(n_trn=5),synth_learner(n_trn=5)
    with full.no_bar(), full.no_logging(): full.fit_wsd(4, 1e-2, pct_warmup='3ba', pct_decay='1ep')
    with res.no_bar(), res.no_logging(): res.fit_wsd(4, 1e-2, pct_warmup='3ba', pct_decay='1ep', start_epoch=2)
    np.testing.assert_allclose(res.recorder.hps['lr'], full.recorder.hps['lr'][10:])

# AnnealLR

def run_anneal(sched, total, **kw):
    opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1, momentum=0.9)
    s = AnnealLR(opt, sched, total, **kw)
    lrs = []
    for _ in range(total): lrs.append(opt.param_groups[0]['lr']); opt.step(); s.step()
    return lrs

def test_anneal_lr_batches_are_steps():
    np.testing.assert_allclose(run_anneal(warmup_cos(1e-2, '5ba'), 20), warmup_cos(1e-2, 0.25)(np.arange(20)/20), atol=1e-15)

def test_anneal_lr_epochs():
    np.testing.assert_allclose(run_anneal({'lr': wsd(1e-2, '1ep', '2ep'), 'mom': sched_no(0.9, 0.9)}, 50, steps_per_epoch=10),
                               wsd(1e-2, 0.2, 0.4)(np.arange(50)/50), atol=1e-15)

def test_anneal_lr_refusals():
    opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="'1ep'.*steps_per_epoch"): AnnealLR(opt, wsd(1e-2, '1ep', 0.2), 50)
    with pytest.raises(ValueError, match="'60ba'.*longer"): AnnealLR(opt, warmup_cos(1e-2, '60ba'), 50)
    with pytest.raises(ValueError, match='steps_per_epoch'): AnnealLR(opt, warmup_cos(1e-2, '1ep'), 50, steps_per_epoch=0)
    assert opt.param_groups[0]['lr'] == 0.1
