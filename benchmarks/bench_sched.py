"""Per-batch cost of scheduling lr + mom, side by side in one process: fastai_anneal's `ParamScheduler`,
fastai's `ParamScheduler`, and torch's `OneCycleLR.step()`; and the cost of previewing a schedule over
1,000,000 positions at once. Run: `python benchmarks/bench_sched.py` (prints a markdown table)."""
import os, sys, time, timeit
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests'))
from fastai_oracle import fs  # fastai's own schedule module, frozen before ours are installed under its names
import numpy as np, torch
import warnings
from functools import partial
from fastai.test_utils import synth_dbunch
from fastai.learner import Learner
from fastai.losses import MSELossFlat
from fastai.optimizer import OptimWrapper, SGD, Adam
import fastai_anneal.all as fa  # the whole API, and the plugin turned on

N_BATCH = 2000  # batches per timed run

def learner(n_groups, opt_func=SGD):
    "A Learner whose optimizer has `n_groups` parameter groups"
    model = torch.nn.Sequential(*[torch.nn.Linear(1, 1) for _ in range(n_groups)])
    learn = Learner(synth_dbunch(), model, loss_func=MSELossFlat(), opt_func=opt_func,
                    splitter=lambda m: [list(l.parameters()) for l in m])
    learn.create_opt()
    return learn

def one_cycle(sched_mod, lr_max):
    return {'lr': sched_mod.combined_cos(0.25, lr_max/25, lr_max, lr_max/1e5), 'mom': sched_mod.combined_cos(0.25, 0.95, 0.85, 0.95)}

def time_callback(cb, learn, n_iter=N_BATCH, reps=5):
    "Best per-batch time (s) of before_batch + after_batch over `reps` epochs of `n_iter` batches, stepped as in a fit"
    cb.learn = learn
    learn.n_epoch,learn.epoch,learn.n_iter,learn.training = 1,0,n_iter,True
    best = float('inf')
    after = getattr(type(cb), 'after_batch', None)  # both record in after_batch
    for _ in range(reps):
        cb.before_fit()
        learn.pct_train = 0.
        if hasattr(cb, 'before_train'): cb.before_train()
        t = time.perf_counter()
        for i in range(n_iter):
            learn.iter = i
            cb.before_batch()
            if after: after(cb)
            learn.pct_train += 1./(n_iter*learn.n_epoch)  # as fastai's TrainEvalCallback steps it
        best = min(best, (time.perf_counter()-t)/n_iter)
    return best

def time_torch(n_groups, reps=5):
    params = [{'params': [torch.nn.Parameter(torch.zeros(2))]} for _ in range(n_groups)]
    best = float('inf')
    for _ in range(reps):
        opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[1e-2]*n_groups, total_steps=N_BATCH+1, pct_start=0.25)
        t = time.perf_counter()
        for i in range(N_BATCH): sched.step()
        best = min(best, (time.perf_counter()-t)/N_BATCH)
    return best

def time_preview(f, x, reps=5): return min(timeit.repeat(lambda: f(x), number=1, repeat=reps))

def main():
    torch.set_num_threads(1)
    warnings.filterwarnings('ignore', message='Detected call of `lr_scheduler.step()`')
    rows = []
    for n_groups in (1, 3):
        lr_max = np.array([1e-2]*n_groups)
        learn = learner(n_groups, partial(SGD, mom=0.9))
        ours = time_callback(fa.ParamScheduler(one_cycle(fa, lr_max)), learn)
        theirs = time_callback(fs.ParamScheduler(one_cycle(fs, lr_max)), learn)
        tch = time_torch(n_groups)
        rows.append((f'lr+mom, {n_groups} group(s), fastai Optimizer', ours, theirs, tch))
        wlearn = learner(n_groups, opt_func=partial(OptimWrapper, opt=torch.optim.AdamW))
        ours_w = time_callback(fa.ParamScheduler(one_cycle(fa, lr_max)), wlearn)
        theirs_w = time_callback(fs.ParamScheduler(one_cycle(fs, lr_max)), wlearn)
        rows.append((f'lr+mom, {n_groups} group(s), torch AdamW in OptimWrapper', ours_w, theirs_w, tch))
    lrs = np.array([1e-4, 1e-3, 1e-2])
    four = lambda m: {**one_cycle(m, lrs), 'wd': m.SchedCos(1e-2, 0.), 'eps': m.SchedLin(1e-5, 1e-8)}
    learn = learner(3, Adam)
    for n_iter in (100, N_BATCH):
        ours,theirs = time_callback(fa.ParamScheduler(four(fa)), learn, n_iter),time_callback(fs.ParamScheduler(four(fs)), learn, n_iter)
        rows.append((f'lr+mom+wd+eps, 3 groups, fastai Adam, {n_iter}-batch epochs', ours, theirs, tch))
    print(f'torch {torch.__version__}, {N_BATCH} batches a run unless said, best of 5\n')
    print('| per batch | fastai_anneal | fastai ParamScheduler | torch OneCycleLR.step() | fastai / ours | torch / ours |')
    print('|---|---|---|---|---|---|')
    for name,o,f,t in rows:
        print(f'| {name} | {o*1e6:.2f} µs | {f*1e6:.1f} µs | {t*1e6:.1f} µs | {f/o:.0f}× | {t/o:.1f}× |')
    print('\n(torch OneCycleLR schedules lr and momentum only; the 4-hyper rows compare it with 3 groups.)')
    x = np.linspace(0, 1, 1_000_000)
    s = fa.combined_cos(0.25, 1e-3/25, 1e-3, 1e-8)
    print('\n| 1,000,000 positions at once | time |\n|---|---|')
    print(f'| one-cycle lr, numpy float64 array | {time_preview(s, x)*1e3:.1f} ms |')
    print(f'| one-cycle lr, torch float32 tensor | {time_preview(s, torch.tensor(x, dtype=torch.float32))*1e3:.1f} ms |')
    print(f'| one-cycle lr, 3 parameter groups (numpy) | {time_preview(fa.combined_cos(0.25, np.array([1e-5, 1e-4, 1e-3]), 1e-2, 0.), x)*1e3:.1f} ms |')
    fsched = fs.combined_cos(0.25, 1e-3/25, 1e-3, 1e-8)
    xs = x[:10_000]
    t = min(timeit.repeat(lambda: [fsched(p) for p in xs], number=1, repeat=3))
    print(f'| fastai combined_cos, a Python loop (measured over 10,000, scaled) | {t*100*1e3:.0f} ms |')

if __name__ == '__main__': main()
