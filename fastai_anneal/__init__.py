"Hyper-parameter schedules for fastai: fast, picklable, vectorised, and correct."
__version__ = "0.0.1"
from .core import *
from .callback import *
from .schedules import *
from .lr_find import *
from .torch_sched import *
