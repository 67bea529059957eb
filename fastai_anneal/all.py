"`from fastai_anneal.all import *`: the whole public API (written by hand, like fastai's `all` modules)"
from .core import *
from .callback import *
from .schedules import *
from .lr_find import *
from .torch_sched import *
