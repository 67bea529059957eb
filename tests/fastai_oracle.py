"fastai's own methods, captured before fastai_anneal replaces them on `Learner`: the oracle for parity tests"
import sys
assert 'fastai_anneal' not in sys.modules, "fastai_oracle must be imported before fastai_anneal"
from fastai.learner import Learner
import fastai.callback.schedule

fastai_fit_one_cycle = Learner.fit_one_cycle
fastai_fit_flat_cos = Learner.fit_flat_cos
fastai_fit_sgdr = Learner.fit_sgdr
fastai_fine_tune = Learner.fine_tune
fastai_lr_find = Learner.lr_find
