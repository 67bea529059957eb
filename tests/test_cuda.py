"""GPU paths: each test needs CUDA and skips cleanly without it, except the gloo half of the broadcast test,
which runs on the CPU. Tensor hypers on CUDA filled in place, fused and capturable AdamW, a compiled optimizer step that
does not recompile while lr and betas change every batch, CUDA RNG restored by keep_state, to_fp16 with one-cycle, and
the distributed broadcast on CUDA only for nccl."""
from functools import partial
import numpy as np, pytest, torch
from torch import nn
import torch.distributed as dist
from fastai.callback.core import Callback
from fastai.optimizer import OptimWrapper
from fastai_anneal.all import *
from lr_find_state import make_learner, full_state, assert_same

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')

def cuda_learner(opt_func, **kw):
    learn = make_learner('adam', **kw)
    learn.opt_func = opt_func
    learn.dls.to('cuda'); learn.model.cuda()
    return learn

def adam(cls=torch.optim.Adam, **kw): return partial(OptimWrapper, opt=partial(cls, **kw))

def tensor_adam(dev='cuda', **kw):
    "torch's Adam holding `lr` and `betas` as tensors on `dev`, as a capturable/compiled setup does"
    def _inner(params, lr, **k):
        return OptimWrapper(params, torch.optim.Adam, lr=torch.tensor(lr, device=dev), betas=(torch.tensor(0.9, device=dev), torch.tensor(0.99, device=dev)), **kw, **k)
    return _inner

def one_cycle_lrs(learn, n_epoch, lr_max):
    n = n_epoch*len(learn.dls.train)
    return combined_cos(0.25, lr_max/25, lr_max, lr_max/1e5)(np.arange(n)/n)

class Seen(Callback):
    "The tensors holding lr and beta1 in each group at every step (checked to stay the same objects)"
    order = 61
    def before_fit(self): self.objs,self.lrs = None,[]
    def before_step(self):
        pg = self.opt.opt.param_groups
        objs = [(g['lr'], g['betas'][0]) for g in pg]
        if self.objs is None: self.objs = objs
        assert all(a is c and b is d for (a,b),(c,d) in zip(objs, self.objs)), 'a hyper-parameter tensor was replaced'
        self.lrs.append(float(pg[-1]['lr']))

@cuda
def test_tensor_hypers_on_cuda_filled_in_place():
    learn = cuda_learner(tensor_adam(capturable=True), cbs=Seen())
    learn.fit_one_cycle(2, 1e-2)
    assert all(t.device.type == 'cuda' for objs in learn.seen.objs for t in objs)
    np.testing.assert_allclose(learn.seen.lrs, one_cycle_lrs(learn, 2, 1e-2), rtol=1e-6)

@cuda
@pytest.mark.parametrize('kw', [dict(fused=True), dict(capturable=True), dict(capturable=True, foreach=True)])
def test_fused_and_capturable_adamw(kw):
    learn = cuda_learner(adam(torch.optim.AdamW, **kw))
    learn.fit_one_cycle(2, 1e-2)
    np.testing.assert_allclose(learn.recorder.hps['lr'], one_cycle_lrs(learn, 2, 1e-2), rtol=1e-12)
    before = full_state(learn)
    learn.lr_find(num_it=10, show_plot=False)
    assert_same(learn, before)
    learn.fit_one_cycle(1, 1e-3)

@cuda
def test_compiled_step_no_recompilation_while_lr_and_betas_change():
    from torch._dynamo.testing import CompileCounterWithBackend
    torch._dynamo.reset()
    learn = cuda_learner(tensor_adam(capturable=True), cbs=Seen())
    learn.create_opt()
    cnt = CompileCounterWithBackend('inductor')
    learn.opt.step = torch.compile(learn.opt.opt.step, backend=cnt)
    learn.fit_one_cycle(3, 1e-2)   # lr and mom (beta1) change every batch
    hps = learn.recorder.hps
    assert len(set(hps['lr'])) == len(hps['lr']) and len(set(hps['mom'])) > 1
    assert cnt.frame_count == 1, f'{cnt.frame_count} compilations'
    torch._dynamo.reset()

@cuda
def test_cuda_rng_restored_by_keep_state():
    learn = cuda_learner(adam())
    learn.model.bn.register_forward_hook(lambda m, i, o: o + 0.01*torch.randn_like(o))  # CUDA random numbers every batch
    learn.fit(1)
    states = torch.cuda.get_rng_state_all()
    before = full_state(learn)
    with keep_state(learn):
        torch.randn(100, device='cuda')
        learn.fit(1)
    assert all(torch.equal(a, b) for a,b in zip(states, torch.cuda.get_rng_state_all()))
    assert_same(learn, before)
    learn.lr_find(num_it=10, show_plot=False)
    assert_same(learn, before)

@cuda
def test_to_fp16_with_one_cycle():
    from fastai.callback.fp16 import MixedPrecision
    learn = cuda_learner(adam(torch.optim.AdamW)).to_fp16()
    learn.fit_one_cycle(2, 1e-2)
    np.testing.assert_allclose(learn.recorder.hps['lr'], one_cycle_lrs(learn, 2, 1e-2), rtol=1e-12)
    assert any(isinstance(cb, MixedPrecision) for cb in learn.cbs)
    before = full_state(learn)
    learn.lr_find(num_it=10, show_plot=False)
    assert_same(learn, before)

def _broadcast_device(backend, monkeypatch, tmp_path):
    "The device of the tensor `DistributedDL._broadcast` hands to torch's broadcast, in a one-process group of `backend`"
    DistributedDL = pytest.importorskip('fastai.distributed').DistributedDL
    seen = []
    real = dist.broadcast
    monkeypatch.setattr(dist, 'broadcast', lambda t, src, *a, **k: (seen.append(t.device.type), real(t, src, *a, **k))[1])
    dist.init_process_group(backend, init_method=f'file://{tmp_path}/pg', rank=0, world_size=1)
    try: res = DistributedDL._broadcast(None, torch.arange(5), 0)
    finally: dist.destroy_process_group()
    assert res == list(range(5))
    return seen[0]

def test_gloo_broadcast_stays_on_cpu(monkeypatch, tmp_path):
    assert _broadcast_device('gloo', monkeypatch, tmp_path) == 'cpu'

@cuda
@pytest.mark.skipif(not (torch.cuda.is_available() and dist.is_nccl_available()), reason='needs CUDA and nccl')
def test_nccl_broadcast_goes_to_cuda(monkeypatch, tmp_path):
    torch.cuda.set_device(0)
    assert _broadcast_device('nccl', monkeypatch, tmp_path) == 'cuda'
