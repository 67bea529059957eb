"""Each method we put in place of fastai's takes fastai's parameters in fastai's order with fastai's defaults
(ours may add parameters after them), checked against fastai's own methods captured before ours."""
import inspect, warnings
import numpy as np, pytest
from fastai.learner import Learner, Recorder
from fastai.test_utils import synth_learner
import fastai_oracle as oracle
from fastai_anneal.all import *

REPLACED = ([(Learner, n, getattr(oracle, f'fastai_{n}')) for n in
             ('fit_one_cycle', 'fit_flat_cos', 'fit_sgdr', 'fine_tune', 'lr_find')]
            + [(Recorder, n, f) for n,f in oracle.fastai_recorder.items()]
            + [(LRFinder, '__init__', oracle.fs.LRFinder.__init__)])

def norm(v):
    "A default as something comparable: functions by name, one function as a 1-tuple (fastai's `(valley)`)"
    if callable(v) and not isinstance(v, type): return (getattr(v, '__name__', repr(v)),)
    if isinstance(v, tuple): return tuple(n for o in v for n in norm(o))
    return v

def named(sig): return [(n, p) for n,p in sig.parameters.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
def keywords(sig): return {n: p.default for n,p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY}
UNUSABLE = {'lr_max'}  # in fastai's `fine_tune` signature (from `delegates`), but passing it is a TypeError there

@pytest.mark.parametrize('cls,name,theirs', REPLACED, ids=[f'{c.__name__}.{n}' for c,n,_ in REPLACED])
def test_fastai_parameters_and_defaults(cls, name, theirs):
    ours = named(inspect.signature(getattr(cls, name)))
    fastai = named(inspect.signature(theirs))
    assert [n for n,_ in ours[:len(fastai)]] == [n for n,_ in fastai]
    for (n,p),(_,q) in zip(ours, fastai): assert norm(p.default) == norm(q.default), n
    ours_kw = {**dict(ours), **keywords(inspect.signature(getattr(cls, name)))}
    for n,v in keywords(inspect.signature(theirs)).items():
        if n in UNUSABLE: continue
        assert n in ours_kw, n
        assert norm(getattr(ours_kw[n], 'default', ours_kw[n])) == norm(v), n

def test_plot_lr_find_returns_the_figure():
    "fastai's default `return_fig=True`: `fig = learn.recorder.plot_lr_find()` is the figure"
    import matplotlib.pyplot as plt
    learn = synth_learner()
    res = learn.lr_find(num_it=20, show_plot=False)
    fig = learn.recorder.plot_lr_find()
    assert isinstance(fig, plt.Figure)
    assert learn.recorder.plot_lr_find(return_fig=False) is None
    fig = learn.recorder.plot_lr_find(suggestions=[(res.valley, 1.)], nms=['valley'])
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ['valley']
    plt.close('all')

def test_fine_tune_takes_durations():
    "`pct_start` in `fine_tune` as in every `fit_*`: '1ep' of the unfrozen phase is that phase's first epoch"
    a,b = synth_learner(n_trn=5),synth_learner(n_trn=5)
    a.fine_tune(2, pct_start='1ep')
    b.fine_tune(2, pct_start=0.5)
    np.testing.assert_allclose(a.recorder.hps['lr'], b.recorder.hps['lr'])
    a.fine_tune(2, pct_start='3ba', freeze_epochs=0)
    with pytest.raises(ValueError, match='pct_start'): a.fine_tune(2, pct_start='3ep')
