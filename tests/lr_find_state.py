"Helpers for the lr_find robustness tests: learners with every optimizer kind, and the Learner's whole state, bit for bit"
import random
from functools import partial
import numpy as np, torch
from fastcore.foundation import L
from torch import nn
from fastai.learner import Learner
from fastai.optimizer import OptimWrapper, SGD, Adam, RAdam, Lamb, QHAdam, RMSProp, Larc, ranger
from fastai.data.core import DataLoaders
from fastai.test_utils import synth_dbunch
from fastai.callback.progress import ProgressCallback
from fastai.torch_core import set_seed

class Net(nn.Module):
    "A small regression model with a BatchNorm, a tied weight and a non-persistent buffer changed by every training forward"
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1, 4)
        self.bn = nn.BatchNorm1d(4)
        self.out = nn.Linear(4, 1)
        self.register_buffer('seen', torch.zeros(1), persistent=False)
    def forward(self, x):
        if self.training: self.seen += x.abs().mean().detach()
        return self.out(self.bn(self.lin(x)))

def torch_opt(cls, **kw): return partial(OptimWrapper, opt=partial(cls, **kw))

OPTS = dict(sgd=SGD, sgd_mom=partial(SGD, mom=0.9), adam=Adam, radam=RAdam, lamb=Lamb, qhadam=QHAdam, rmsprop=RMSProp,
            larc=Larc, ranger=ranger,
            torch_sgd=torch_opt(torch.optim.SGD, lr=0.01, momentum=0.9), torch_adam=torch_opt(torch.optim.Adam),
            torch_adamw=torch_opt(torch.optim.AdamW), torch_adamw_tensor_lr=torch_opt(torch.optim.AdamW, lr=torch.tensor(1e-3)),
            torch_adamw_foreach=torch_opt(torch.optim.AdamW, foreach=True),
            torch_adamw_fused=torch_opt(torch.optim.AdamW, fused=True),
            torch_rmsprop=torch_opt(torch.optim.RMSprop), torch_adagrad=torch_opt(torch.optim.Adagrad))

def splitter(m): return [list(m.lin.parameters()) + list(m.bn.parameters()), list(m.out.parameters())]

def make_learner(opt='adam', seed=0, cbs=None, n_trn=64, bs=16):
    set_seed(seed)
    dls = synth_dbunch(bs=bs, n_train=n_trn//bs, n_valid=1)
    learn = Learner(dls, Net(), loss_func=nn.MSELoss(), opt_func=OPTS[opt], splitter=splitter, cbs=cbs, lr=1e-2)
    learn.remove_cb(ProgressCallback)
    return learn

def _bits(t): return t.detach().cpu().reshape(-1).contiguous().view(torch.uint8).clone()

def _copy(o):
    "`o` with tensors as (id, dtype, shape, bytes) and containers copied"
    if isinstance(o, torch.Tensor): return ('T', o.dtype, tuple(o.shape), o.device, _bits(o))
    if isinstance(o, dict): return {k if not isinstance(k, torch.Tensor) else ('P', id(k)): _copy(v) for k,v in o.items()}
    if isinstance(o, (list, tuple, L)): return [_copy(v) for v in o]
    if isinstance(o, np.ndarray): return ('A', o.dtype, o.tobytes())
    return o

def opt_state(opt, pos):
    "The optimizer's state and hypers; the params of a group as positions in `pos` (id -> position in the model)"
    if opt is None: return None
    if isinstance(opt, OptimWrapper):
        t = opt.opt
        return dict(state=[t.state.get(p) for g in t.param_groups for p in g['params']],
                    groups=[{k: (v if k != 'params' else [pos[id(p)] for p in v]) for k,v in g.items()} for g in t.param_groups])
    own = {k: v for k,v in vars(opt).items() if k in ('count', 'slow_weights')}  # Lookahead's
    return dict(state=[opt.state.get(p) for p,*_ in opt.all_params()], hypers=list(opt.hypers), own=own)

def full_state(learn):
    "Everything lr_find must leave as it was, bit for bit (and object for object)"
    m = learn.model
    return _copy(dict(
        tensors={(n, k, name): v for n,mod in m.named_modules() for k in ('_parameters', '_buffers') for name,v in getattr(mod, k).items()},
        grads=[p.grad for p in m.parameters()],
        modes=[mod.training for mod in m.modules()],
        opt=id(learn.opt), opt_state=opt_state(learn.opt, {id(p): i for i,p in enumerate(m.parameters())}),
        rng=(random.getstate(), np.random.get_state()[1], torch.get_rng_state(),
             torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None),
        dl=[dl.rng.getstate() for dl in learn.dls.loaders]))

def diff(a, b, path=''):
    "The first place where two `full_state`s differ, or None"
    if type(a) != type(b): return f'{path}: {type(a).__name__} != {type(b).__name__}'
    if isinstance(a, dict):
        if a.keys() != b.keys(): return f'{path}: keys {set(a) ^ set(b)}'
        return next((d for k in a if (d := diff(a[k], b[k], f'{path}/{k}'))), None)
    if isinstance(a, (list, tuple)):
        if len(a) != len(b): return f'{path}: length {len(a)} != {len(b)}'
        if a and a[0] == 'T' and len(a) == 5:
            return None if a[1:4] == b[1:4] and torch.equal(a[4], b[4]) else f'{path}: tensor {a[1:4]} != {b[1:4]} or values differ'
        return next((d for i,(x,y) in enumerate(zip(a, b)) if (d := diff(x, y, f'{path}[{i}]'))), None)
    return None if a == b else f'{path}: {a!r} != {b!r}'

def assert_same(learn, before):
    d = diff(before, full_state(learn))
    assert d is None, d
