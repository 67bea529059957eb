"""One process of the Accelerate test in `test_steps.py`, started by `torch.distributed.run` on CPU:
trains with `AnnealLR` prepared by `accelerator.prepare` (which steps it once per process and
only on synchronised steps) and `total_steps` set the documented way, the optimizer steps of ONE
process over the whole data: `epochs * len(train_dl) // gradient_accumulation_steps`, `train_dl`
before `prepare`. Writes the lr of each optimizer step to OUT/rank{RANK}.json."""
import json, os, sys
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, TensorDataset
from fastai_anneal.all import *

if __name__ == '__main__':
    out,n_acc = sys.argv[1],int(sys.argv[2])
    torch.manual_seed(0)
    acc = Accelerator(cpu=True, gradient_accumulation_steps=n_acc)
    dl = DataLoader(TensorDataset(torch.randn(64, 3), torch.randn(64, 1)), batch_size=4)
    epochs = 2
    total = epochs*len(dl)//n_acc
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = AnnealLR(opt, combined_cos(0.25, 0.004, 0.1, 1e-6), total_steps=total)
    model,opt,dl,sched = acc.prepare(model, opt, dl, sched)
    lrs = []
    for _ in range(epochs):
        for x,y in dl:
            with acc.accumulate(model):
                acc.backward(torch.nn.functional.mse_loss(model(x), y))
                if acc.sync_gradients: lrs.append(opt.param_groups[0]['lr'])
                opt.step(); sched.step(); opt.zero_grad()
    res = dict(world=acc.num_processes, total=total, lrs=lrs)
    with open(os.path.join(out, f'rank{acc.process_index}.json'), 'w') as f: json.dump(res, f)
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)  # skip interpreter-exit destructors of the process group (see distrib_script.py)
