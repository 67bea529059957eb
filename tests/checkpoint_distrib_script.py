"""One rank of the two-process `Checkpoint` test in `test_checkpoint.py`, started by
`torch.distributed.run` on CPU (gloo): `fit_one_cycle` of `checkpoint_script`'s learner under
`distrib_ctx`, with a `Checkpoint`; with KILL > 0 both ranks die by `os._exit` once KILL training
batches are done, else each rank writes its weights and recorder to OUT/rank{RANK}.pt."""
import os, sys
import torch
from fastai.distributed import *
from fastai_anneal.all import *
from checkpoint_script import Kill, learner

if __name__ == '__main__':
    out,kill = sys.argv[1],int(sys.argv[2])
    torch.set_num_threads(1)
    learn = learner(out)
    cbs = [Checkpoint(every='2ba', fname='ckpt')] + ([Kill(kill)] if kill > 0 else [])
    with learn.distrib_ctx(sync_bn=False), learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(3, 1e-2, cbs=cbs)
    r = learn.recorder
    res = dict(weights=learn.model.state_dict(), hps=r.hps, values=[list(v) for v in r.values],
               losses=[float(x) for x in r.losses])
    torch.save(res, os.path.join(out, f"rank{os.environ['RANK']}.pt"))
    teardown_distrib()
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)  # skip interpreter-exit destructors of the process group (see distrib_script.py)
