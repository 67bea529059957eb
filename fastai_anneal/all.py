"""`from fastai_anneal.all import *`: the user API, and the plugin turned on.

Written by hand, like fastai's `all` modules; the plumbing stays in its own module."""
from .core import (Schedule, Annealer, annealer, SchedLin, SchedCos, SchedNo, SchedExp, SchedPoly,
                   sched_lin, sched_cos, sched_no, sched_exp, CombineScheds, combine_scheds,
                   combined_cos, sched_from_dict)
from .schedules import (one_cycle, sgdr, cyclic, warmup, warmup_cos, warmup_cos_lr_rate, wsd,
                        cos_decay, exp_decay, sched_poly, sched_step, sched_inv_sqrt, sched_rex,
                        sched_tanh, sched_crop, with_noise, plot_scheds)
from .hypers import OptHypers, valid_hypers
from .callback import ParamScheduler, ScaleOnPlateau, CooldownOnPlateau
from .lr_find import LRFinder, keep_state, valley, slide, minimum, steep, SuggestionMethod
from . import learner  # adds the Learner methods: importing it turns the plugin on
from .torch_sched import AnnealLR
from .checkpoint import Checkpoint

__all__ = ['Schedule', 'Annealer', 'annealer', 'SchedLin', 'SchedCos', 'SchedNo', 'SchedExp',
           'SchedPoly', 'sched_lin', 'sched_cos', 'sched_no', 'sched_exp', 'sched_poly',
           'CombineScheds', 'combine_scheds', 'combined_cos', 'one_cycle', 'sgdr', 'cyclic',
           'warmup', 'warmup_cos', 'warmup_cos_lr_rate', 'wsd', 'cos_decay', 'exp_decay',
           'sched_step', 'sched_inv_sqrt', 'sched_rex', 'sched_tanh', 'sched_crop', 'with_noise',
           'sched_from_dict', 'plot_scheds', 'OptHypers', 'valid_hypers', 'ParamScheduler',
           'ScaleOnPlateau', 'CooldownOnPlateau', 'LRFinder', 'keep_state', 'valley', 'slide',
           'minimum', 'steep', 'SuggestionMethod', 'AnnealLR', 'Checkpoint']
