"""`from fastai_anneal.all import *`: the whole public API, and the plugin turned on.

Written by hand, like fastai's `all` modules."""
from .core import *
from .schedules import *
from .hypers import *
from .callback import *
from .lr_find import *
from .learner import *
from .torch_sched import *
from .checkpoint import Checkpoint  # its helpers (rng_states, ...) stay in fastai_anneal.checkpoint
