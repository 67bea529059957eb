"""One run of a fit with a `Checkpoint`, for `test_checkpoint.py`:
`python checkpoint_script.py OUT FIT KILL` fits a small model with dropout, batch norm and a
validation set in folder OUT; with KILL > 0 the process dies by `os._exit` (no cleanup) once KILL
training batches are done, else it writes the weights and the recorder's `hps` and `values` to
OUT/result.pt. FIT names the `Learner` method (see `FITS`); a fifth argument: loader workers."""
import os, sys
import torch
from torch import nn
from fastai.callback.all import *
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.learner import Learner
from fastai.metrics import accuracy
from fastai.torch_core import set_seed
from fastai_anneal.all import *
from fastai_anneal.checkpoint import Checkpoint

class Kill(Callback):
    "Die like a killed process, no cleanup, once `k` training batches are done (before they are saved)"
    def __init__(self, k): self.k = k
    def after_batch(self):
        if self.training and self.train_iter == self.k: os._exit(3)

def data(n, bs=8, workers=0):
    "A shuffled training loader and a validation loader of a 2-class problem"
    x = torch.randn(n, 4)
    y = (x[:, 0] + 0.5*x[:, 1] > 0).long()
    items = list(zip(x, y))
    return DataLoaders(DataLoader(items[:n - 16], bs=bs, shuffle=True, num_workers=workers),
                       DataLoader(items[n - 16:], bs=bs, num_workers=workers), device='cpu')

def split(m): return [list(m[:3].parameters()), list(m[3:].parameters())]

def learner(path, workers=0):
    set_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3),
                          nn.Linear(16, 2))
    return Learner(data(60, workers=workers), model, loss_func=nn.CrossEntropyLoss(), metrics=accuracy, path=path,
                   splitter=split)

FITS = {
    'one_cycle': lambda l, cbs: l.fit_one_cycle(3, 1e-2, cbs=cbs),
    'flat_cos': lambda l, cbs: l.fit_flat_cos(3, 1e-2, cbs=cbs),
    'sgdr': lambda l, cbs: l.fit_sgdr(2, 1, 1e-2, cbs=cbs),
    'warmup_cos': lambda l, cbs: l.fit_warmup_cos(3, 1e-2, pct_warmup='4ba', cbs=cbs),
    'wsd': lambda l, cbs: l.fit_wsd(3, 1e-2, cbs=cbs),
    'fine_tune': lambda l, cbs: l.fine_tune(2, 1e-2, freeze_epochs=1, cbs=cbs),
    'cooldown': lambda l, cbs: l.cooldown(3, lr_start=1e-2, cbs=cbs),
    'fit_sched': lambda l, cbs: l.fit(3, cbs=cbs + [ParamScheduler({'lr': sched_cos(1e-2, 1e-4)})]),
    'acc': lambda l, cbs: l.fit_one_cycle(3, 1e-2, cbs=cbs + [GradientAccumulation(16)]),
}

if __name__ == '__main__':
    out,fit,kill = sys.argv[1],sys.argv[2],int(sys.argv[3])
    workers = int(sys.argv[4]) if len(sys.argv) > 4 else 0  # loader processes
    torch.set_num_threads(1)
    learn = learner(out, workers)
    cbs = [Checkpoint(every='4ba', fname='ckpt')] + ([Kill(kill)] if kill > 0 else [])
    with learn.no_bar(), learn.no_logging(): FITS[fit](learn, cbs)
    r = learn.recorder
    res = dict(weights=learn.model.state_dict(), hps=r.hps, values=[list(v) for v in r.values],
               losses=[float(x) for x in r.losses], lrs=list(r.lrs))
    torch.save(res, os.path.join(out, 'result.pt'))
