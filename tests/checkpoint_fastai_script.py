"""A fit with fastai's own schedules (the plugin off: only `Checkpoint` imported), for
`test_checkpoint.py`: `python checkpoint_fastai_script.py OUT KILL` runs `fit_one_cycle` with a
checkpoint every 4 batches in folder OUT; with KILL > 0 it dies by `os._exit` once KILL training
batches are done, else it writes the weights and the recorder's `hps` and `values` to OUT/result.pt."""
import os, sys
from fastai.vision.all import *
from fastai.test_utils import synth_learner
from fastai_anneal.checkpoint import Checkpoint

class Kill(Callback):
    order = 99
    def __init__(self, k): self.k = k
    def after_batch(self):
        if self.training and self.train_iter == self.k: os._exit(3)

if __name__ == '__main__':
    out,kill = sys.argv[1],int(sys.argv[2])
    assert 'fastai_anneal.learner' not in sys.modules  # fastai's fit_one_cycle and ParamScheduler
    torch.set_num_threads(1)
    set_seed(42)
    learn = synth_learner(n_trn=3, path=out)
    cbs = [Checkpoint(every='4ba', fname='ckpt')] + ([Kill(kill)] if kill > 0 else [])
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(4, 1e-2, cbs=cbs)
    r = learn.recorder
    res = dict(weights=learn.model.state_dict(), lr=[float(v) for v in r.hps['lr']],
               mom=[float(v) for v in r.hps['mom']], values=[list(map(float, v)) for v in r.values])
    torch.save(res, os.path.join(out, 'result.pt'))
