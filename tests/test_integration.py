"The callback in real fits: recording, bad input before any change, export, import order, the demo"
import os, pickle, subprocess, sys
from functools import partial
import numpy as np, pytest, torch
from fastai.test_utils import synth_learner
from fastai.learner import load_learner
from fastai_anneal.all import *

def weights(learn): return [p.detach().clone() for p in learn.model.parameters()]

@pytest.mark.parametrize('kwargs,name', [
    (dict(lr_max=float('nan')), 'lr_max'), (dict(lr_max=0.), 'lr_max'), (dict(lr_max=-1e-3), 'lr_max'),
    (dict(lr_max=slice(0., 1e-2)), 'lr_max.start'), (dict(lr_max=[1e-3, 1e-2]), 'lr_max'),
    (dict(pct_start=1.5), 'pct_start'), (dict(pct_start=-0.1), 'pct_start'), (dict(div=0), 'div'),
    (dict(div_final=float('inf')), 'div_final'), (dict(moms=(0.9, 0.8)), 'moms'), (dict(wd=-1.), 'wd'),
    (dict(start_epoch=5), 'start_epoch'), (dict(n_epoch=0), 'n_epoch'), (dict(n_epoch=1.5), 'n_epoch'),
])
def test_bad_fit_args_change_nothing(kwargs, name):
    learn = synth_learner(n_trn=20)
    learn.create_opt()
    w,hypers = weights(learn),[dict(h) for h in learn.opt.hypers]
    kwargs = {'n_epoch': 2, **kwargs}
    with pytest.raises(ValueError) as e: learn.fit_one_cycle(**kwargs)
    assert f'`{name}`' in str(e.value)
    assert all(torch.equal(a, b) for a,b in zip(w, weights(learn)))
    assert [dict(h) for h in learn.opt.hypers] == hypers

def test_unknown_hyper_lists_valid():
    learn = synth_learner(n_trn=20)
    with pytest.raises(ValueError, match="no hyper-parameter 'lrr'.*lr") as e:
        learn.fit(1, cbs=ParamScheduler({'lrr': sched_lin(1e-3, 1e-2)}))

def test_group_mismatch():
    learn = synth_learner(n_trn=20)
    with pytest.raises(ValueError, match='3 per-group values'):
        learn.fit(1, cbs=ParamScheduler({'lr': sched_lin([1e-3]*3, 1e-2)}))

def test_recorder_one_value_per_training_batch():
    learn = synth_learner(n_trn=30)
    learn.fit_one_cycle(3)
    n = 3*len(learn.dls.train)
    assert len(learn.recorder.hps['lr']) == len(learn.recorder.hps['mom']) == n
    assert learn.recorder.group_hps['lr'].shape == (n, 1)

def test_plot_sched():
    learn = synth_learner(n_trn=20)
    with pytest.raises(ValueError, match='no hyper-parameters'): learn.recorder.plot_sched()
    learn.fit_one_cycle(2)
    assert learn.recorder.plot_sched() is None  # one figure in Jupyter, as fastai's
    fig = learn.recorder.plot_sched(return_fig=True)
    assert [a.get_ylabel() for a in fig.axes if a.get_visible()] == ['lr', 'mom']
    fig = learn.recorder.plot_sched('lr', groups=True, return_fig=True)
    assert len(fig.axes[0].lines) == 1
    with pytest.raises(ValueError, match="'wd'"): learn.recorder.plot_sched(['wd'])

def exportable_learner(path, **kwargs):
    "A regression Learner on fastai `Datasets` (which `export` needs), with picklable transforms"
    from fastai.data.core import Datasets
    from fastai.learner import Learner
    from fastai.losses import MSELossFlat
    from fastai.test_utils import RegModel
    x = torch.randn(64, 1)
    dsets = Datasets(range(64), tfms=[[x.__getitem__], [(2*x+3).__getitem__]], splits=[list(range(48)), list(range(48, 64))])
    return Learner(dsets.dataloaders(bs=16), RegModel(), loss_func=MSELossFlat(), path=path, **kwargs)

def test_callback_pickles_and_exports(tmp_path):
    learn = exportable_learner(tmp_path, cbs=ParamScheduler({'lr': combined_cos(0.25, 1e-3, 1e-2, 1e-6)}))
    learn.fit(1)
    cb = pickle.loads(pickle.dumps(learn.param_scheduler))
    assert repr(cb.scheds['lr']) == repr(learn.param_scheduler.scheds['lr'])
    learn.export('model.pkl', pickle_module=pickle)
    learn2 = load_learner(tmp_path/'model.pkl')
    assert isinstance(learn2.param_scheduler, ParamScheduler)
    learn2.dls = learn.dls
    learn2.fit(1)
    assert len(learn2.recorder.hps['lr']) == len(learn.dls.train)

def test_fit_one_cycle_patched_whatever_the_import_order():
    check = ("from fastai.learner import Learner, Recorder; "
             "assert Learner.fit_one_cycle.__module__ == Recorder.plot_sched.__module__ == 'fastai_anneal.learner'")
    for imports in ("import fastai_anneal.all; from fastai.callback.all import *; from fastai.tabular.all import *",
                    "from fastai.callback.all import *; from fastai.tabular.all import *; import fastai_anneal.all",
                    "from fastai_anneal.all import *; import fastai.callback.schedule, importlib"):
        subprocess.run([sys.executable, '-c', f'{imports}; {check}'], check=True)

def test_importing_the_package_patches_nothing():
    "nbdev imports `_modidx` in every notebook: that (and the package, and AnnealLR) must leave fastai as it is"
    check = ("from fastai.learner import Learner, Recorder; import fastai.callback.schedule; "
             "assert Learner.fit_one_cycle.__module__ == 'fastai.callback.schedule', Learner.fit_one_cycle.__module__; "
             "assert Learner.lr_find.__module__ == 'fastai.callback.schedule'")
    for imports in ("import fastai_anneal", "import fastai_anneal._modidx", "from fastai_anneal.torch_sched import AnnealLR"):
        subprocess.run([sys.executable, '-c', f'{imports}; {check}'], check=True)

def test_annealr_imports_no_fastai():
    code = ("import sys; from fastai_anneal.torch_sched import AnnealLR; from fastai_anneal.schedules import *; "
            "bad = [m for m in sys.modules if m == 'fastai' or m.startswith('fastai.')]; assert not bad, bad")
    subprocess.run([sys.executable, '-c', code], check=True)

@pytest.mark.parametrize('cmd', [[sys.executable, '-m', 'fastai_anneal'], ['fastai-anneal']])
def test_demo_smoke(cmd, tmp_path):
    exe = cmd if cmd[0] != 'fastai-anneal' else [os.path.join(os.path.dirname(sys.executable), 'fastai-anneal')]
    r = subprocess.run(exe + ['demo', '--epochs', '2', '--out', str(tmp_path/'out')], capture_output=True, text=True, check=True)
    assert 'final validation accuracy' in r.stdout
    acc = float(r.stdout.split('final validation accuracy: ')[1].split()[0])
    assert acc > 0.8
    assert (tmp_path/'out'/'schedules.png').stat().st_size > 10_000

def test_demo_bad_args(tmp_path):
    r = subprocess.run([sys.executable, '-m', 'fastai_anneal', 'demo', '--epochs', '0', '--out', str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and '`epochs`' in r.stderr
