"""Hyper-parameter schedules for fastai: fast, picklable, vectorised, and correct.

Importing `fastai_anneal` (or its `_modidx`, as nbdev does in every notebook) changes nothing in
fastai: `from fastai_anneal.all import *` turns the plugin on (fastai's convention)."""
__version__ = "0.0.1"
