"""Time, file size and peak memory of a `Checkpoint` save against `learn.save(with_opt=True)`,
on the 25M-parameter model of `bench_lr_find_memory.py` with Adam state, each variant in a fresh
subprocess. Run: `python benchmarks/bench_checkpoint.py [--params 25e6] [--reps 3]` (prints a
markdown table). The peak RSS growth during a save, in copies of the weights, is the last column."""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_lr_find_memory import PeakRSS, model

def learner(n_params):
    "A `Learner` of the benchmark's model, trained one epoch: Adam state and gradients exist"
    import torch
    from torch import nn
    from fastai.callback.progress import ProgressCallback
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from fastai.optimizer import Adam
    from fastai.torch_core import set_seed
    set_seed(0)
    width = 2048
    ds = list(zip(torch.randn(256, width), torch.randn(256, 1)))
    dls = DataLoaders.from_dsets(ds, ds[:32], bs=32, device='cpu')
    learn = Learner(dls, model(n_params, width), loss_func=nn.MSELoss(), opt_func=Adam,
                    path=tempfile.mkdtemp())
    learn.remove_cb(ProgressCallback)
    with learn.no_logging(): learn.fit(1, 1e-4)
    return learn

def run(variant, n_params):
    "One measurement in this (fresh) process: seconds, bytes written, peak RSS growth in bytes"
    from fastai.callback.core import Callback
    from fastai_anneal.all import Checkpoint
    learn = learner(n_params)
    weights = sum(p.numel()*p.element_size() for p in learn.model.parameters())
    if variant == 'learn.save':
        with PeakRSS() as m:
            t = time.perf_counter()
            f = learn.save('model', with_opt=True)
            secs = time.perf_counter() - t
        return dict(secs=secs, size=os.path.getsize(f), rss=m.growth, weights=weights)
    res = {}
    class Around(Callback):
        "Measure `Checkpoint`'s `after_batch` (a save every batch) of the fourth batch"
        def __init__(self, first): self.first,self.order = first,(99 if first else 101)
        def after_batch(self):
            if self.train_iter != 4: return
            if self.first:
                res['m'] = PeakRSS().__enter__()
                res['t'] = time.perf_counter()
            else:
                res['secs'] = time.perf_counter() - res['t']
                res['m'].__exit__(None, None, None)
    cb = Checkpoint(every='1ba', fname='ckpt')
    with learn.no_logging(): learn.fit(1, 1e-4, cbs=[cb, Around(True), Around(False)])
    size = os.path.getsize(learn.path/learn.model_dir/'ckpt.pth')
    return dict(secs=res['secs'], size=size, rss=res['m'].growth, weights=weights)

def main():
    p = argparse.ArgumentParser()
    p.add_argument('--params', type=float, default=25e6)
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--variant')
    a = p.parse_args()
    if a.variant:
        print(json.dumps(run(a.variant, a.params)))
        return
    root = Path(__file__).parent.parent
    path = os.pathsep.join([str(root), os.environ.get('PYTHONPATH', '')])
    env = {**os.environ, 'PYTHONPATH': path}
    print(f"| {a.params/1e6:g}M parameters, Adam | save (s) | file (MB) | peak RSS growth (MB) "
          "| x weights |")
    print("|---|---|---|---|---|")
    for v in ['learn.save', 'Checkpoint']:
        rs = []
        for _ in range(a.reps):
            cmd = [sys.executable, __file__, '--variant', v, '--params', str(a.params)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            rs.append(json.loads(out.strip().splitlines()[-1]))
        med = {k: float(np.median([r[k] for r in rs])) for k in rs[0]}
        print(f"| {v} | {med['secs']:.2f} | {med['size']/1e6:.1f} | {med['rss']/1e6:.1f} | "
              f"{med['rss']/med['weights']:.2f} |")

if __name__ == '__main__': main()
