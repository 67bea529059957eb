"""Cost of the LR-finder suggestion functions on long runs, ours against fastai's, side by side in one process.
Run: `python benchmarks/bench_lr_find.py` (prints a markdown table)."""
import timeit
import numpy as np
import fastai.callback.schedule as fs
import fastai_anneal.lr_find as ours

def curve(n, seed=0):
    lrs = 1e-7*(1e8)**(np.arange(n)/n)
    losses = np.cos(np.linspace(0, 3, n)) + 0.01*np.random.default_rng(seed).standard_normal(n)
    return lrs, losses

def best(f, reps=3): return min(timeit.repeat(f, number=1, repeat=reps))

def main():
    print('| suggestion | n points | fastai_anneal | fastai | fastai / ours |\n|---|---|---|---|---|')
    for name in ('valley', 'slide', 'minimum', 'steep'):
        for n in (2_000, 20_000):
            lrs,losses = curve(n)
            t_ours = best(lambda: getattr(ours, name)(lrs, losses, n))
            if name == 'valley' and n > 2_000: t_fai = None  # O(n^2): about 100x the 2,000-point time
            else:
                import torch
                tl,tls = torch.tensor(lrs),torch.tensor(losses)
                t_fai = best(lambda: getattr(fs, name)(tl, tls, n), reps=1)
            fai = f'{t_fai*1e3:.1f} ms' if t_fai else 'not run (O(n²), ~100× the 2,000-point time)'
            ratio = f'{t_fai/t_ours:.0f}×' if t_fai else ''
            print(f'| {name} | {n:,} | {t_ours*1e3:.2f} ms | {fai} | {ratio} |')

if __name__ == '__main__': main()
