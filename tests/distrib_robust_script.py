"""One rank of the two-process tests in `test_robust_learner.py`, started by `torch.distributed.run`
on CPU (gloo). `MODE` 'drop_last': 120 samples in batches of 16 with `drop_last` (each rank runs 3
batches an epoch); 'uneven': rank 1 has fewer samples than rank 0. Writes what happened to
`OUT_DIR/rank{RANK}.json`."""
import json, os, sys
import torch
from fastai.callback.core import Callback
from fastai.data.core import DataLoaders, TfmdDL
from fastai.learner import Learner
from fastai.losses import MSELossFlat
from fastai.test_utils import RegModel
from fastai.distributed import *
from fastai_anneal.all import *

class Count(Callback):
    "The training loader's length and the number of training batches this rank ran in epoch 1"
    def before_train(self):
        if self.epoch == 0: self.learn.counted = dict(len=len(self.dl), ran=0)
    def after_batch(self):
        if self.training and self.epoch == 0: self.learn.counted['ran'] += 1

def data(n):
    x = torch.randn(n, 1)
    return list(zip(x, 2*x + 3))

if __name__ == '__main__':
    out,mode = sys.argv[1:3]
    rank = int(os.environ['RANK'])
    torch.manual_seed(0)
    n = 104 if mode == 'uneven' and rank == 1 else 120
    train = TfmdDL(data(n), bs=16, shuffle=True, drop_last=True, num_workers=0)
    dls = DataLoaders(train, TfmdDL(data(32), bs=16, num_workers=0))
    learn = Learner(dls, RegModel(), loss_func=MSELossFlat(), cbs=Count())
    res = {}
    try:
        with learn.distrib_ctx(), learn.no_bar(), learn.no_logging():
            learn.fit_one_cycle(2, 1e-2)
        res = dict(**learn.counted, lr=[float(v) for v in learn.recorder.hps['lr']])
    except Exception as e: res = dict(error=f'{type(e).__name__}: {e}')
    with open(os.path.join(out, f'rank{rank}.json'), 'w') as f: json.dump(res, f)
    torch.distributed.barrier()  # both ranks past any failed collective before the teardown
    teardown_distrib()
    # These tests are about the errors, written above. A clean interpreter exit after a gloo group
    # is `test_distributed.py`'s subject; here a gloo thread still unwinding at shutdown once in
    # many runs aborts the rank ('terminate called without an active exception') after its result
    # is written, so the rank leaves as a finished worker does, without the shutdown.
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)
