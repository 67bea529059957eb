"""What the scheduling callback costs at model scale: `fit_one_cycle` with our `ParamScheduler` against fastai's own
(`fastai_oracle.fastai_fit_one_cycle`), on the digits demo and on a model with 50 parameter groups and discriminative
lrs, interleaved in one process (best of `--reps`); the callback's share of wall time per batch (its methods timed
inside the fit); and the memory of a long epoch (up to 10^6 batches, stepped without training) in the epoch tables
(bounded: `_CHUNK` batches at a time) and in the per-batch record, per batch and per value kept.
Run: `python benchmarks/bench_fit_cost.py` (`--max_batches 200000 --reps 1` for a quick run)."""
import argparse, contextlib, gc, os, sys, time, tracemalloc
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests'))
import fastai_oracle  # fastai's fit_one_cycle, captured before fastai_anneal replaces it
import numpy as np, torch
from torch import nn
from fastai_oracle import fs  # fastai's own schedule module, frozen before ours are installed under its names
from fastai.callback.progress import ProgressCallback
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from fastai.optimizer import Adam
from fastai.torch_core import set_seed
import fastai_anneal.all as fa
import fastai_anneal.callback as fac
from fastai_anneal.demo import digits_learner

TIMED = 'before_fit', 'before_train', 'before_batch', 'after_batch', 'after_fit'

@contextlib.contextmanager
def timing(cls):
    "Time every call of `cls`'s scheduling methods (class-level wrappers); yields a one-element list of seconds"
    spent,orig = [0.],{k: cls.__dict__[k] for k in TIMED if k in cls.__dict__}
    def wrap(f):
        def g(self, *a):
            t = time.perf_counter()
            try: return f(self, *a)
            finally: spent[0] += time.perf_counter() - t
        return g
    for k,f in orig.items(): setattr(cls, k, wrap(f))
    try: yield spent
    finally:
        for k,f in orig.items(): setattr(cls, k, f)

def groups_learner(n_groups=50, width=32, n=2048, bs=64, seed=0):
    "A stack of `n_groups` linear layers, one parameter group each"
    set_seed(seed)
    x = torch.randn(n, width); y = x.sum(1, keepdim=True)
    ds = list(zip(x, y))
    model = nn.Sequential(*[nn.Sequential(nn.Linear(width, width), nn.ReLU()) for _ in range(n_groups-1)], nn.Linear(width, 1))
    return Learner(DataLoaders.from_dsets(ds, ds[:bs], bs=bs), model, loss_func=nn.MSELoss(), opt_func=Adam,
                   splitter=lambda m: [list(l.parameters()) for l in m])

def one_fit(make, fit, cls, n_epoch, lr):
    learn = make()
    learn.remove_cb(ProgressCallback)
    n_batch = n_epoch*len(learn.dls.train)
    with timing(cls) as spent, learn.no_logging():
        t = time.perf_counter()
        fit(learn, n_epoch, lr)
        total = time.perf_counter() - t
    return total/n_batch, spent[0]/n_batch

def fit_costs(reps):
    print('| model | fit_one_cycle | wall time per batch | callback per batch | callback share |\n|---|---|---|---|---|')
    cases = [('digits demo (1 group)', digits_learner, 4, 1e-2),
             ('50 groups, slice(1e-5, 1e-2)', groups_learner, 2, slice(1e-5, 1e-2))]
    for name,make,n_epoch,lr in cases:
        res = {'fastai_anneal': [], 'fastai': []}
        for _ in range(reps):  # interleaved, best of `reps`
            res['fastai_anneal'].append(one_fit(make, lambda l,n,lr: l.fit_one_cycle(n, lr), fac.ParamScheduler, n_epoch, lr))
            res['fastai'].append(one_fit(make, fastai_oracle.fastai_fit_one_cycle, fs.ParamScheduler, n_epoch, lr))
        for who,rs in res.items():
            wall,cb = min(r[0] for r in rs),min(r[1] for r in rs)
            print(f'| {name} | {who} | {wall*1e3:.2f} ms | {cb*1e6:.1f} µs | {100*cb/wall:.2f} % |')

class _Learn:
    "Just what the callbacks read and write, for stepping an epoch without training"
    def __init__(self, opt): self.opt,self.n_epoch,self.epoch,self.training,self.iter,self.pct_train = opt,1,0,True,0,0.

def epoch_memory(n_batch, n_groups, cls, sched_mod):
    "Table size, retained and peak traced memory of stepping `cls` (lr + mom one-cycle) through an epoch of `n_batch` batches"
    learn = groups_learner(n_groups, width=2, n=64)
    learn.create_opt()
    lr_max = np.array([1e-2]*n_groups) if n_groups > 1 else 1e-2
    scheds = {'lr': sched_mod.combined_cos(0.25, lr_max/25, lr_max, lr_max/1e5), 'mom': sched_mod.combined_cos(0.25, 0.95, 0.85, 0.95)}
    cb = cls(scheds)
    fake = _Learn(learn.opt); fake.n_iter = n_batch
    cb.learn = fake
    gc.collect(); tracemalloc.start()
    cb.before_fit()
    if hasattr(cb, 'before_train'): cb.before_train()
    step,table = 1./n_batch,0
    for i in range(n_batch):
        fake.iter = i
        cb.before_batch(); cb.after_batch()
        fake.pct_train += step
        f = getattr(cb, '_fit', None)  # ours: the state of the fit, with its table of values
        if i == n_batch//2 and f is not None:
            table = sum(sys.getsizeof(c) + sum(sys.getsizeof(r) for r in c) for c in f.cols) + sys.getsizeof(f.pos)
            table += sum(c.nbytes for c in f.rec.table)  # the float64 arrays the lists were made from
    during,peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    f = getattr(cb, '_fit', None)
    # ours: the record's chunks of float64 rows (numpy's headers and unfilled rows included) per value
    # they hold; the epoch's last rows are still in its table
    rec = None if f is None else f.rec
    record = None if rec is None else (sum(map(sys.getsizeof, rec.chunks + [rec.buf]))
                                       / ((len(rec.chunks)*rec.cap + rec.k) * rec.edges[-1]))
    return table, during, peak, record

def values_kept(n_groups, who):
    "Values recorded a batch: ours keeps lr per group and mom once (one value for every group); fastai the last group's"
    return n_groups + 1 if who == 'fastai_anneal' else 2

def memory(sizes):
    "fastai's callback costs ~0.3 ms a batch, so it is stepped through 10^4 batches only (its memory per batch is constant)"
    print('\n| batches an epoch | groups | callback | epoch tables (at mid-epoch) | traced memory at epoch end (tables + record) '
          '| per batch | values kept a batch | B per value | the record\'s chunks, B per value |\n'
          '|---|---|---|---|---|---|---|---|---|')
    for n_batch,n_groups in sizes:
        for who,cls,mod in (('fastai_anneal', fac.ParamScheduler, fa), ('fastai', fs.ParamScheduler, fs)):
            if who == 'fastai' and n_batch > 10**4: continue
            table,during,peak,record = epoch_memory(n_batch, n_groups, cls, mod)
            tab = f'{table/2**10:.0f} KiB' if who == 'fastai_anneal' else 'none (evaluates per batch)'
            kept = n_batch*values_kept(n_groups, who)
            alone = '-' if record is None else f'{record:.2f} B'
            print(f'| {n_batch:,} | {n_groups} | {who} | {tab} | {during/2**20:.1f} MiB | {during/n_batch:,.0f} B '
                  f'| {values_kept(n_groups, who)} | {during/kept:.1f} B | {alone} |')

def main():
    p = argparse.ArgumentParser()
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--max_batches', type=int, default=10**6)
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f'torch {torch.__version__}, {torch.get_num_threads()} thread, best of {args.reps} interleaved runs\n')
    fit_costs(args.reps)
    m = args.max_batches
    memory([(10**4, 1), (m, 1), (10**4, 50), (m//10, 50)])  # 50 groups: 10^5 batches (~0.4 GB of record at 10^6)

if __name__ == '__main__': main()
