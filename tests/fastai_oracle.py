"""fastai's own methods and scheduling names, captured before fastai_anneal replaces them: the oracle for parity tests.

Importing `fastai_anneal.learner` puts our objects under fastai's names in `fastai.callback.schedule` (so that any
import order gives ours). `fs` is a frozen copy of that module taken before, whose functions (and the captured
methods) look their globals up in the copy, so they stay fastai's own code on fastai's own objects."""
import sys, types, functools
assert 'fastai_anneal' not in sys.modules, "fastai_oracle must be imported before fastai_anneal"
from fastai.learner import Learner, Recorder
import fastai.callback.schedule as _fs

fs = types.ModuleType(_fs.__name__, _fs.__doc__)
fs.__dict__.update(vars(_fs))

def _frozen(f):
    "A copy of function `f` of fastai's schedule module whose globals are the frozen copy `fs`"
    g = types.FunctionType(f.__code__, fs.__dict__, f.__name__, f.__defaults__, f.__closure__)
    g.__kwdefaults__ = f.__kwdefaults__
    return functools.update_wrapper(g, f)

for _n,_o in list(vars(fs).items()):
    if isinstance(_o, types.FunctionType) and _o.__module__ == _fs.__name__: setattr(fs, _n, _frozen(_o))

fastai_fit_one_cycle = _frozen(Learner.fit_one_cycle)
fastai_fit_flat_cos = _frozen(Learner.fit_flat_cos)
fastai_fit_sgdr = _frozen(Learner.fit_sgdr)
fastai_fine_tune = _frozen(Learner.fine_tune)
fastai_lr_find = _frozen(Learner.lr_find)
# fastai's methods as they are, looking names up in fastai's live module (where ours are installed)
fastai_live = {n: getattr(Learner, n) for n in ('fit_one_cycle', 'fit_flat_cos', 'fit_sgdr', 'lr_find')}
fastai_recorder = {n: getattr(Recorder, n) for n in ('plot_sched', 'plot_lr_find')}  # fastai's, before ours
