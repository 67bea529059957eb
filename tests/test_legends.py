"Legends and titles drawn by `plot_scheds` and `.preview` are short names, in a readable size, one figure a call"
import matplotlib.pyplot as plt
import numpy as np, pytest
from fastai_anneal.all import *
from fastai_anneal.core import MAX_DEPTH, SchedOp, as_schedule

def texts(ax): return [t.get_text() for t in ax.get_legend().get_texts()]

GALLERY = [one_cycle(1e-2, three_phase=True), sgdr(3, 1, 1e-2), cyclic(1e-3, 1e-2, 3, 'triangular2'), wsd(1e-2, 0.1, 0.2, '1-sqrt'),
           warmup(sched_cos(1e-2, 0.), 0.1), sched_cos(1., 0.) * 2. + 1., as_schedule(np.cos)]

def test_list_gets_short_names():
    n = len(plt.get_fignums())
    fig = plot_scheds(GALLERY, return_fig=True)
    assert len(plt.get_fignums()) == n + 1
    assert texts(fig.axes[0]) == ['one_cycle', 'sgdr', 'cyclic', 'wsd', 'warmup', 'sched_cos * 2. + 1.', 'cos']
    assert all(len(t) <= 40 for t in texts(fig.axes[0]))
    assert fig.axes[0].get_legend().get_texts()[0].get_fontsize() >= 8
    plt.close('all')

def test_repeated_names_numbered_and_dict_keys_kept():
    ax = plot_scheds([sgdr(2, 1, 1.), sgdr(3, 1, 1.), sched_lin(0., 1.)], return_fig=True).axes[0]
    assert texts(ax) == ['sgdr (0)', 'sgdr (1)', 'sched_lin']
    ax = plot_scheds({'fast': sgdr(2, 1, 1.), 'slow': sgdr(3, 1, 1.)}, return_fig=True).axes[0]
    assert texts(ax) == ['fast', 'slow']
    ax = plot_scheds(one_cycle([1e-3, 1e-2]), return_fig=True).axes[0]
    assert texts(ax) == ['one_cycle (group 0)', 'one_cycle (group 1)']
    plt.close('all')

def test_preview_title_and_groups():
    s = warmup(combine_scheds([0.3, 0.7], [sched_lin([0.1, 1.], [1., 2.]), sched_cos([1., 2.], 0.)]), '5ba')
    fig = s.preview(50, return_fig=True)
    ax = fig.axes[0]
    assert ax.get_title() == 'warmup' and ax.title.get_fontsize() >= 10 and len(ax.lines) == 2
    assert texts(ax) == ['group 0', 'group 1']
    np.testing.assert_allclose(ax.lines[1].get_ydata(), s.resolve(50)(np.arange(50)/50)[:, 1])
    assert sgdr(3, 1, 1e-2).preview(return_fig=True).axes[0].get_legend() is None
    plt.close('all')

def test_labels_of_deep_and_plain():
    s = sched_lin(0., 1.)
    for _ in range(MAX_DEPTH - 1): s = s * 1.
    assert len(s.label) <= 40 and s.label.startswith('SchedOp')
    def my_sched(p): return 1 - p
    assert as_schedule(my_sched).label == 'my_sched' and sched_exp(1., 2.).label == 'sched_exp'
    for bad in [[], {}, 3, 'sched']:
        with pytest.raises((ValueError, TypeError), match='`scheds`'): plot_scheds(bad)
