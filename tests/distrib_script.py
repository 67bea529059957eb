"""One rank of the two-process test in `test_distributed.py`, started by `torch.distributed.run` on
CPU (gloo): fits a `synth_learner` with two parameter groups under fastai's `distrib_ctx` and writes
what this rank's `ParamScheduler` recorded, with what it trained on, to
`OUT_DIR/rank{RANK}.json`."""
import json, os, sys
import torch
from fastai.callback.core import Callback
from fastai.test_utils import synth_learner
from fastai.distributed import *
from fastai_anneal.all import *

class Probe(Callback):
    "Record the model's class, the local number of training batches and the first batch's inputs"
    def before_train(self):
        self.learn.probe = dict(model=type(self.model).__name__, n_local=len(self.dl))
    def before_batch(self):
        if 'x0' not in self.learn.probe: self.learn.probe['x0'] = self.x[:2].flatten().tolist()

if __name__ == '__main__':
    out = sys.argv[1]
    torch.manual_seed(0)  # the same data on every rank
    learn = synth_learner(n_trn=8, splitter=lambda m: [[m.a], [m.b]], cbs=Probe())
    with learn.distrib_ctx(), learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(2, slice(1e-3, 1e-2))
    r = learn.recorder
    res = dict(world=int(os.environ['WORLD_SIZE']), n_global=len(learn.dls.train), **learn.probe,
               hps={k: [float(x) for x in v] for k,v in r.hps.items()},
               group_hps={k: v.tolist() for k,v in r.group_hps.items()})
    with open(os.path.join(out, f"rank{os.environ['RANK']}.json"), 'w') as f: json.dump(res, f)
    teardown_distrib()
