"fastai's scheduling names: both of fastai's forms work, and any import order gives ours"
import re, subprocess, sys, os
from pathlib import Path
import numpy as np, pytest
from fastai.test_utils import synth_learner
from fastai_oracle import fs, fastai_live
from fastai_anneal.all import *
import fastai.callback.schedule

root = Path(__file__).parent.parent
ORDERS = {'ours first': 'from fastai_anneal.all import *\nfrom fastai.callback.all import *\nfrom fastai.vision.all import *\n',
          'fastai first': 'from fastai.vision.all import *\nfrom fastai.callback.all import *\nfrom fastai_anneal.all import *\n',
          'fastai loaded, ours, fastai star': 'import fastai.vision.all\nfrom fastai_anneal.all import *\nfrom fastai.vision.all import *\n'}

def run_py(code):
    env = {**os.environ, 'MPLBACKEND': 'Agg', 'PYTHONPATH': str(root)}
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, cwd=root, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout

BOTH_FORMS = '''
import math, pickle
for f,ref in [(sched_lin, lambda s,e,p: s+p*(e-s)), (sched_cos, lambda s,e,p: s+(1+math.cos(math.pi*(1-p)))*(e-s)/2),
              (sched_no, lambda s,e,p: s), (sched_exp, lambda s,e,p: s*(e/s)**p)]:
    assert f(2., 1e-2, 0.3) == ref(2., 1e-2, 0.3)     # fastai's functional form: a value
    assert f(2., 1e-2)(0.3) == ref(2., 1e-2, 0.3)     # the schedule form
    pickle.dumps(f(2., 1e-2))
assert SchedCos(1., 0.)(0.5) == 0.5 and SchedPoly(1., 0., 2)(0.5) == 0.75
@annealer
def sched_sq(start, end, pos): return start + (end-start)*pos**2
assert sched_sq(0., 1., 0.5) == 0.25 == sched_sq(0., 1.)(0.5)
import fastai.callback.schedule as fs, fastai_anneal.core as core
assert fs.sched_lin is core.sched_lin and fs.combined_cos is core.combined_cos
print('ok')
'''

@pytest.mark.parametrize('order', list(ORDERS))
def test_both_forms_in_any_import_order(order):
    assert run_py(ORDERS[order] + BOTH_FORMS).strip().endswith('ok')

def readme_examples():
    readme = (root/'README.md').read_text()
    return ''.join(re.findall(r'```python\n(.*?)```', readme, re.S)[:2])

@pytest.mark.parametrize('order', ['ours first', 'fastai first'])
def test_readme_examples_in_any_import_order(order):
    code = readme_examples().replace('from fastai_anneal.all import *\n', ORDERS[order])
    assert run_py(code + "\nprint('ok')").strip().endswith('ok')

def test_functional_form_equals_fastais():
    for n in ('sched_lin', 'sched_cos', 'sched_no', 'sched_exp'):
        ours,theirs = globals()[n],getattr(fs, n)
        for pos in (0., 0.3, 1.): assert ours(2., 1e-2, pos) == theirs(2., 1e-2, pos)

def test_installed_names():
    live = fastai.callback.schedule
    installed = {n for n in live.__all__ if getattr(live, n) is not getattr(fs, n)}
    assert installed == {'annealer', 'sched_lin', 'sched_cos', 'sched_no', 'sched_exp', 'SchedLin', 'SchedCos', 'SchedNo', 'SchedExp',
                         'SchedPoly', 'combine_scheds', 'combined_cos', 'ParamScheduler', 'LRFinder', 'valley', 'slide', 'minimum',
                         'steep', 'SuggestionMethod'}

@pytest.mark.parametrize('name,args,n_epoch', [('fit_one_cycle', (2, 1e-2), 2), ('fit_flat_cos', (2, 1e-2), 2), ('fit_sgdr', (2, 1, 1e-2), 3)])
def test_fastais_own_methods_run_on_our_names(name, args, n_epoch):
    "fastai's original methods, looking up `combined_cos`, `SchedCos`, `ParamScheduler` in its module, now get ours and still train"
    learn = synth_learner(n_trn=20)
    fastai_live[name](learn, *args)
    assert len(learn.recorder.hps['lr']) == n_epoch*len(learn.dls.train)
    assert np.isfinite(learn.recorder.hps['lr']).all()

def test_fastais_own_lr_find_runs_on_our_names():
    learn = synth_learner(n_trn=20)
    res = fastai_live['lr_find'](learn, num_it=20, show_plot=False)
    assert res.valley > 0
