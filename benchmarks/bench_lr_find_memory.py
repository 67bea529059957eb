"""Memory and time of `lr_find`, ours (each `snapshot` choice) against fastai's, on the same 25M-parameter model with Adam
state, each run in a fresh subprocess. Reports the peak RSS growth during `lr_find` (and on CUDA the peak device-memory
growth) and its wall time. Run: `python benchmarks/bench_lr_find_memory.py [--params 25e6] [--num_it 20] [--device cpu|cuda]`
(prints a markdown table). Peak RSS during training varies from run to run (the allocator keeps some of the optimizer
step's temporaries), so each variant runs `--reps` times: median and range."""
import argparse, json, os, subprocess, sys, tempfile, threading, time
import numpy as np

def _status(key):
    "A field of /proc/self/status, in bytes"
    with open('/proc/self/status') as f:
        return next(int(l.split()[1])*1024 for l in f if l.startswith(key + ':'))

class PeakRSS:
    "Peak resident memory during a block: the kernel's high-water mark reset at the start, or a 1 ms sampler where that is not allowed"
    def __enter__(self):
        self.start = _status('VmRSS')
        try:
            with open('/proc/self/clear_refs', 'w') as f: f.write('5')  # reset VmHWM to the current RSS
            self.hwm = True
        except OSError:
            self.hwm,self.peak,self.done = False,self.start,False
            def sample():
                while not self.done: self.peak = max(self.peak, _status('VmRSS')); time.sleep(1e-3)
            self.thread = threading.Thread(target=sample, daemon=True); self.thread.start()
        return self
    def __exit__(self, *exc):
        if self.hwm: self.peak = _status('VmHWM')
        else: self.done = True; self.thread.join()
        self.growth = self.peak - self.start

def model(n_params, width=2048):
    "A stack of `width`-square linear layers with about `n_params` parameters"
    from torch import nn
    n = max(1, round(n_params / (width*width + width)))
    return nn.Sequential(*[m for _ in range(n) for m in (nn.Linear(width, width), nn.ReLU())], nn.Linear(width, 1))

def run(impl, snapshot, n_params, num_it, device):
    "One measurement, in this (fresh) process"
    if impl == 'fastai': import fastai_oracle  # noqa: F401 (nothing patched: fastai's own lr_find)
    import torch
    from torch import nn
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from fastai.optimizer import Adam
    from fastai.torch_core import set_seed
    from fastai.callback.progress import ProgressCallback
    if impl == 'ours': import fastai_anneal.all  # noqa: F401 (patches Learner.lr_find)
    set_seed(0)
    width = 2048
    x,y = torch.randn(256, width),torch.randn(256, 1)
    ds = list(zip(x, y))
    dls = DataLoaders.from_dsets(ds, ds[:32], bs=32, device=torch.device(device))
    learn = Learner(dls, model(n_params, width), loss_func=nn.MSELoss(), opt_func=Adam, path=tempfile.mkdtemp())
    learn.remove_cb(ProgressCallback)
    with learn.no_logging(): learn.fit(1, 1e-4)  # Adam state and gradients exist, as after some training
    kw = dict(num_it=num_it, show_plot=False) | (dict(snapshot=snapshot) if impl == 'ours' else {})
    cuda = device.startswith('cuda')
    if cuda: torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); dev0 = torch.cuda.memory_allocated()
    with PeakRSS() as m:
        t = time.perf_counter()
        learn.lr_find(**kw)
        if cuda: torch.cuda.synchronize()
        t = time.perf_counter() - t
    res = dict(impl=impl, snapshot=snapshot, params=sum(p.numel() for p in learn.model.parameters()), rss_mb=m.growth/2**20, s=t)
    if cuda: res['device_mb'] = (torch.cuda.max_memory_allocated() - dev0)/2**20
    print(json.dumps(res))

def measure(impl, snapshot, args):
    "Run one measurement in a fresh subprocess and return its result"
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(here, '..', 'tests'), os.path.join(here, '..'), os.environ.get('PYTHONPATH', '')]))
    out = subprocess.run([sys.executable, __file__, '--one', impl, snapshot, '--params', str(args.params), '--num_it', str(args.num_it),
                          '--device', args.device], capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])

def main():
    p = argparse.ArgumentParser()
    p.add_argument('--params', type=float, default=25e6)
    p.add_argument('--num_it', type=int, default=20)
    p.add_argument('--device', default='cpu')
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--one', nargs=2)
    args = p.parse_args()
    if args.one: return run(*args.one, int(args.params), args.num_it, args.device)
    variants = [('fastai', '-')] + [('ours', s) for s in ('disk', 'cpu', 'device')]
    runs = {v: [] for v in variants}
    for _ in range(args.reps):  # interleaved
        for v in variants: runs[v].append(measure(*v, args))
    med = lambda rs, k: float(np.median([r[k] for r in rs]))
    fai = med(runs[variants[0]], 'rss_mb')
    cuda = 'device_mb' in runs[variants[0]][0]
    print(f"{runs[variants[0]][0]['params']/1e6:.1f}M parameters, Adam, {args.num_it} batches, device {args.device}, {args.reps} fresh processes each: "
          f"median [min, max]; bar: ours <= 1.1 x fastai + 20 MB = {1.1*fai+20:.0f} MB\n")
    print('| lr_find | snapshot | peak RSS growth | ' + ('peak device-memory growth | ' if cuda else '') + 'time |\n|---|---|---|' + ('---|' if cuda else '') + '---|')
    for (impl,snap),rs in runs.items():
        rss = [r['rss_mb'] for r in rs]
        dev = f" {med(rs, 'device_mb'):.0f} MB |" if cuda else ''
        print(f"| {impl} | {snap} | {med(rs, 'rss_mb'):.0f} MB [{min(rss):.0f}, {max(rss):.0f}] |{dev} {med(rs, 's'):.2f} s |")

if __name__ == '__main__': main()
