"lr_find: parity with fastai where fastai works, restoring the Learner however the run ends, robust fast suggestions"
import copy, math, random
import numpy as np, pytest, torch
import matplotlib.pyplot as plt
from hypothesis import given, settings, strategies as st
from fastai_oracle import fs  # fastai's schedule module as it was before fastai_anneal installed its names
from fastai.callback.core import Callback, CancelFitException
from fastai.optimizer import OptimWrapper
from fastai.test_utils import synth_learner
from fastai.torch_core import set_seed
from fastai.callback.progress import ProgressCallback
from fastai_oracle import fastai_lr_find
from fastai_anneal.all import *

def learner(seed=0, **kwargs):
    set_seed(seed)
    learn = synth_learner(n_trn=10, **kwargs)
    learn.remove_cb(ProgressCallback)
    return learn

def weights(learn): return {k: v.clone() for k,v in learn.model.state_dict().items()}

def same(a, b):
    "Deep equality of nested dicts/lists/tuples of tensors and plain values"
    if isinstance(a, torch.Tensor): return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict): return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)): return len(a) == len(b) and all(same(x, y) for x,y in zip(a, b))
    return a == b

def opt_state(learn):
    opt = learn.opt
    if isinstance(opt, OptimWrapper): return copy.deepcopy((list(opt.opt.state.values()), [{k: v for k,v in g.items() if k != 'params'} for g in opt.opt.param_groups]))
    return copy.deepcopy(([opt.state[p] for p,*_ in opt.all_params()], list(opt.hypers)))

def rng_states(learn):
    return (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone(),
            [dl.rng.getstate() for dl in learn.dls.loaders])

def snapshot(learn): return weights(learn), opt_state(learn), rng_states(learn), list(learn.cbs)

def check_unchanged(learn, snap):
    w,o,r,cbs = snap
    assert same(weights(learn), w), 'weights changed'
    assert same(opt_state(learn), o), 'optimizer state changed'
    r2 = rng_states(learn)
    assert r2[0] == r[0] and np.array_equal(r2[1], r[1]) and torch.equal(r2[2], r[2]) and r2[3] == r[3], 'random state changed'
    assert list(learn.cbs) == cbs, 'callbacks changed'
    assert not any(isinstance(cb, LRFinder) for cb in learn.cbs)

def trained(learn):
    "A learner with non-trivial optimizer state (momentum buffers), as after some training"
    learn.fit(1, lr=1e-2)
    return learn

# ---------- parity with fastai

def test_recorded_lrs_and_suggestions_equal_fastai():
    funcs = (valley, slide, minimum, steep)
    ffuncs = (fs.valley, fs.slide, fs.minimum, fs.steep)
    a,b = learner(), learner()
    ra = fastai_lr_find(a, show_plot=False, suggest_funcs=ffuncs)
    rb = b.lr_find(show_plot=False, suggest_funcs=funcs)
    np.testing.assert_allclose(b.recorder.lrs, [float(v) for v in a.recorder.lrs], rtol=1e-12)
    np.testing.assert_allclose(b.recorder.losses, [float(v) for v in a.recorder.losses], rtol=1e-6)
    assert ra._fields == rb._fields == ('valley', 'slide', 'minimum', 'steep')
    for x,y,f in zip(ra, rb, ra._fields):
        if f == 'minimum' and x < b.recorder.lrs[0]: continue  # ours never suggests below the range tried
        assert y == pytest.approx(x, rel=1e-6), f  # fastai rounds the lrs to float32

def test_recorded_lr_formula():
    learn = learner()
    learn.lr_find(start_lr=1e-5, end_lr=1e-1, num_it=30, stop_div=False, show_plot=False)
    assert len(learn.recorder.lrs) == 30
    np.testing.assert_allclose(learn.recorder.lrs, [1e-5*(1e-1/1e-5)**(i/30) for i in range(30)], rtol=1e-12)
    learn.lr_find(start_lr=1e-5, end_lr=1e-1, num_it=30, stop_div=False, show_plot=False, step_mode='lin')
    np.testing.assert_allclose(learn.recorder.lrs, [1e-5 + (i/30)*(1e-1-1e-5) for i in range(30)], rtol=1e-12)

def test_step_mode_takes_both_spellings_of_linear():
    "`Learner.lr_find`'s docs say 'linear': it is 'lin', as every anneal takes both spellings"
    learn = learner()
    learn.lr_find(start_lr=1e-5, end_lr=1e-1, num_it=30, stop_div=False, show_plot=False, step_mode='linear')
    np.testing.assert_allclose(learn.recorder.lrs, [1e-5 + (i/30)*(1e-1-1e-5) for i in range(30)], rtol=1e-12)
    assert LRFinder(step_mode='linear').step_mode == 'lin'
    with pytest.raises(ValueError, match="`step_mode` must be one of 'exp', 'lin', got 'cos'"):
        LRFinder(step_mode='cos')  # the spelling the user gave, not its long form

def curves(rng, n):
    x = np.linspace(0, 1, n)
    lrs = 1e-7*(1e8)**(np.arange(n)/n)
    shapes = [np.cos(3*x), 2 - x + 0.3*rng.standard_normal(n), np.exp(5*(x-0.8)) - x, rng.random(n), np.sort(rng.random(n))[::-1].copy()]
    return lrs, shapes

@pytest.mark.parametrize('n', [16, 17, 25, 60, 120])
def test_suggestions_equal_fastai_functions(n):
    rng = np.random.default_rng(n)
    for seed in range(6):
        lrs,shapes = curves(np.random.default_rng(seed*1000+n), n)
        for losses in shapes:
            tl,ts = torch.tensor(lrs),torch.tensor(losses)
            fv,(fl,fp) = fs.valley(lrs, losses, 100)
            assert valley(lrs, losses, 100) == (pytest.approx(fv, rel=1e-12), (pytest.approx(fl, rel=1e-12), pytest.approx(float(fp), rel=1e-12)))
            for ours,theirs in [(slide, fs.slide), (steep, fs.steep), (minimum, fs.minimum)]:
                x,(px,py) = theirs(tl, ts, 100)
                y,(qx,qy) = ours(lrs, losses, 100)
                if ours is minimum and x < lrs.min(): assert y == lrs.min(); continue
                assert (y, qx, qy) == (pytest.approx(x, rel=1e-12), pytest.approx(float(px), rel=1e-12), pytest.approx(float(py), rel=1e-12)), ours.__name__

def test_suggestion_method():
    assert (SuggestionMethod.Valley, SuggestionMethod.Slide, SuggestionMethod.Minimum, SuggestionMethod.Steep) == (valley, slide, minimum, steep)

# ---------- robustness

@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(0, 100), st.just(math.nan), st.just(math.inf)), min_size=1, max_size=40))
def test_suggestions_finite_inside_range(losses):
    n = len(losses)
    lrs = 1e-7*(1e8)**(np.arange(n)/max(n, 6))
    if not math.isfinite(losses[0]):
        with pytest.raises(ValueError, match='finite'): valley(lrs, losses, 100)
        return
    for f in (valley, slide, minimum, steep):
        lr,(px,py) = f(lrs, losses, 100)
        assert math.isfinite(lr) and lrs[0] <= lr <= lrs[-1], f.__name__
        assert math.isfinite(px) and math.isfinite(py), f.__name__

@pytest.mark.parametrize('num_it', [6, 7, 10, 20, 33])
def test_lr_find_short_runs(num_it):
    learn = learner()
    res = learn.lr_find(num_it=num_it, show_plot=False, suggest_funcs=(valley, slide, minimum, steep))
    assert all(math.isfinite(v) and 1e-7 <= v <= 10 for v in res), res

def test_divergence_and_nan_cut():
    "A huge end_lr drives the loss to inf/NaN: the run stops there and suggestions come from the finite part"
    learn = learner()
    res = learn.lr_find(start_lr=1e-3, end_lr=1e30, num_it=200, show_plot=False, suggest_funcs=(valley, slide, minimum, steep))
    rec = learn.recorder
    assert len(rec.lrs) < 200
    assert all(math.isfinite(v) and 1e-3 <= v <= 1e30 for v in res)
    fig = rec.plot_lr_find(skip_end=0, return_fig=True)
    assert np.isfinite(fig.axes[0].lines[0].get_ydata()).all()
    plt.close(fig)

def test_stop_div_threshold():
    "Stops right after the smoothed loss exceeds 4x the best one (for positive losses), like fastai"
    learn = learner()
    learn.lr_find(start_lr=1e-3, end_lr=1e6, num_it=200, show_plot=False)
    ls = learn.recorder.losses
    best = np.minimum.accumulate(ls)
    over = [i for i in range(len(ls)) if not math.isfinite(ls[i]) or ls[i] > 4*best[i]]
    assert over and over[0] == len(ls) - 1

def test_suggestions_on_long_runs():
    "20,000 points (their speed is measured in benchmarks/bench_lr_find.py, not here)"
    n = 20_000
    lrs = 1e-7*(1e8)**(np.arange(n)/n)
    losses = np.cos(np.linspace(0, 3, n)) + 0.01*np.random.default_rng(0).standard_normal(n)
    for f in (valley, slide, minimum, steep):
        lr,_ = f(lrs, losses, n)
        assert math.isfinite(lr) and lrs[0] <= lr <= lrs[-1], f.__name__

# ---------- restoring the Learner

def test_restores_after_normal_run():
    learn = trained(learner())
    snap = snapshot(learn)
    learn.lr_find(show_plot=False)
    check_unchanged(learn, snap)

def test_training_after_lr_find_is_unchanged():
    "fit after lr_find gives exactly what the same fit gives without it (weights, optimizer, data order)"
    a,b = trained(learner()),trained(learner())
    b.lr_find(show_plot=False)
    a.fit(2, lr=1e-2); b.fit(2, lr=1e-2)
    assert same(weights(a), weights(b))

def test_no_optimizer_stays_none():
    learn = learner()
    assert learn.opt is None
    learn.lr_find(show_plot=False)
    assert learn.opt is None

class Raise(Callback):
    order = 70
    def __init__(self, exc, at=20): self.exc,self.at = exc,at
    def after_batch(self):
        if self.training and self.train_iter == self.at: raise self.exc

@pytest.mark.parametrize('exc', [RuntimeError('boom'), KeyboardInterrupt()], ids=['exception', 'KeyboardInterrupt'])
def test_restores_when_a_callback_raises_mid_run(exc):
    learn = trained(learner())
    learn.add_cb(Raise(exc))
    snap = snapshot(learn)
    with pytest.raises(type(exc)): learn.lr_find(end_lr=1e3, show_plot=False)
    check_unchanged(learn, snap)
    assert learn.xb == (None,) and learn.loss is None  # no batch left behind

def test_restores_when_cancelled():
    learn = trained(learner())
    learn.add_cb(Raise(CancelFitException(), at=30))
    snap = snapshot(learn)
    res = learn.lr_find(show_plot=False)
    check_unchanged(learn, snap)
    assert len(learn.recorder.lrs) == 30 and 1e-7 <= res.valley <= 10

def test_fastai_leaves_weights_trained_after_exception():
    "The failure we fix, reproduced on fastai's own lr_find"
    learn = trained(learner())
    learn.add_cb(Raise(RuntimeError('boom')))
    w = weights(learn)
    with pytest.raises(RuntimeError): fastai_lr_find(learn, end_lr=1e3, show_plot=False)
    assert not same(weights(learn), w)

def test_restores_torch_optimizer_with_tensor_lr():
    from fastai.learner import Learner
    from fastai.losses import MSELossFlat
    from fastai.test_utils import synth_dbunch, RegModel
    def opt_func(params, lr): return OptimWrapper(params, torch.optim.AdamW, lr=torch.tensor(lr))
    set_seed(0)
    learn = Learner(synth_dbunch(), RegModel(), loss_func=MSELossFlat(), opt_func=opt_func, cbs=[], lr=1e-2)
    learn.remove_cb(ProgressCallback)
    learn.fit(1, lr=1e-2)
    lr_t = learn.opt.opt.param_groups[0]['lr']
    snap = snapshot(learn)
    learn.lr_find(show_plot=False)
    check_unchanged(learn, snap)
    assert learn.opt.opt.param_groups[0]['lr'] is lr_t and float(lr_t) == pytest.approx(1e-2)

def test_keep_state_restores_train_mode_and_grads():
    learn = learner()
    learn.model.eval()
    with keep_state(learn): learn.fit(1, lr=0.1)
    assert not learn.model.training
    assert all(p.grad is None for p in learn.model.parameters())

# ---------- arguments, plotting

@pytest.mark.parametrize('kwargs,name', [
    (dict(start_lr=0.), 'start_lr'), (dict(start_lr=-1e-3), 'start_lr'), (dict(end_lr=math.inf), 'end_lr'),
    (dict(start_lr=1., end_lr=1.), 'start_lr'), (dict(start_lr=1., end_lr=1e-3), 'start_lr'), (dict(num_it=0), 'num_it'),
    (dict(num_it=10.), 'num_it'), (dict(num_it=True), 'num_it'), (dict(step_mode='log'), 'step_mode'),
    (dict(suggest_funcs=('valley',)), 'suggest_funcs'), (dict(suggest_funcs=()), 'suggest_funcs'), (dict(stop_div='yes'), 'stop_div'),
])
def test_bad_args_change_nothing(kwargs, name):
    learn = trained(learner())
    snap = snapshot(learn)
    with pytest.raises((ValueError, TypeError)) as e: learn.lr_find(**kwargs)
    assert f'`{name}`' in str(e.value)
    check_unchanged(learn, snap)

def test_show_plot():
    learn = learner()
    plt.close('all')
    learn.lr_find(show_plot=False, suggest_funcs=(valley, steep))
    learn.lr_find(show_plot=False, suggest_funcs=None)
    assert plt.get_fignums() == []
    res = learn.lr_find(suggest_funcs=(valley, steep))
    assert len(plt.get_fignums()) == 1
    ax = plt.gcf().axes[0]
    assert len(ax.lines) == 3 and [t.get_text() for t in ax.get_legend().get_texts()] == ['valley', 'steep']
    assert ax.lines[1].get_xdata()[0] == res.valley
    plt.close('all')

def test_suggest_funcs_none_returns_none():
    assert learner().lr_find(show_plot=False, suggest_funcs=None) is None

def test_partial_suggestion_name():
    from functools import partial
    res = learner().lr_find(show_plot=False, suggest_funcs=(partial(slide, lr_diff=5), valley))
    assert res._fields == ('slide', 'valley')
