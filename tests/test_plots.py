"One figure per plotting call in Jupyter: an executed notebook holds exactly one image per call, as fastai's plots"
import pytest
from execnb.shell import CaptureShell
from fastcore.nbio import new_nb, mk_cell

SETUP = '''from fastai.test_utils import synth_learner
from fastai_anneal.all import *
from fastai_anneal.demo import plot_training
learn = synth_learner(n_trn=20)
learn.fit_one_cycle(2, 1e-2)'''
PLOTS = {  # cell source: number of images Jupyter shows
    'learn.recorder.plot_sched()': 1,
    "learn.recorder.plot_sched('lr', groups=True)": 1,
    'learn.recorder.plot_sched()\nlearn.recorder.plot_sched()': 2,
    "plot_scheds({'a': sched_lin(1., 0.), 'b': one_cycle(1e-2)})": 1,
    'sgdr(3, 1, 1e-2).preview(30)': 1,
    'plot_training(learn)': 1,
    'learn.lr_find(num_it=20)': 1,
    'learn.lr_find(num_it=20, suggest_funcs=None)': 1,
    'learn.recorder.plot_lr_find();': 1,  # it returns the figure (fastai's default): `;` shows it once
    'fig = learn.recorder.plot_lr_find()': 1,
    'learn.recorder.plot_lr_find(return_fig=False)': 1,
}

def n_images(cell): return sum('image/png' in o.get('data', {}) for o in cell.outputs)

@pytest.fixture(scope='module')
def executed():
    import matplotlib.pyplot as plt
    plt.close('all')  # figures other tests left open would show with the first plot
    nb = new_nb([mk_cell(SETUP)] + [mk_cell(s) for s in PLOTS])
    CaptureShell().run_all(nb, exc_stop=True)
    return nb

def test_one_image_per_plot_call(executed):
    assert {c.source: n_images(c) for c in executed.cells[1:]} == PLOTS

def test_figure_only_when_asked():
    from fastai.test_utils import synth_learner
    from fastai_anneal.all import one_cycle, plot_scheds
    import matplotlib.pyplot as plt
    learn = synth_learner(n_trn=10)
    learn.fit_one_cycle(1)
    assert learn.recorder.plot_sched() is None and plot_scheds({'a': one_cycle(1.)}) is None and one_cycle(1.).preview() is None
    for fig in (learn.recorder.plot_sched(return_fig=True), plot_scheds({'a': one_cycle(1.)}, return_fig=True), one_cycle(1.).preview(return_fig=True)):
        assert isinstance(fig, plt.Figure)
    plt.close('all')
