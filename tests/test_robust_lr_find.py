"Regression tests for lr_find/keep_state (snapshots on disk, on the CPU or the device, restored bit for bit)"
import copy, os, signal, threading
import numpy as np, pytest, torch
from torch import nn
from fastai.callback.core import Callback
from fastai.learner import load_learner
from fastai_anneal.all import *
from fastai_anneal.lr_find import _Store, _save, _load
from lr_find_state import OPTS, make_learner, full_state, assert_same, diff

SNAPSHOTS = ('disk', 'cpu', 'device')

class Count(Callback):
    "Counts training batches"
    n = 0
    def before_batch(self): self.n += 1

@pytest.mark.parametrize('opt', OPTS)
def test_every_optimizer_comes_back_bit_identical_and_usable(opt, tmp_path):
    "F1: fit, lr_find, fit: the Learner is exactly as before lr_find, trains on, saves with its optimizer and exports"
    learn = make_learner(opt)
    learn.fit(1)
    before = full_state(learn)
    learn.lr_find(num_it=10, show_plot=False)
    assert_same(learn, before)
    if hasattr(learn.opt, 'opt') and hasattr(learn.opt.opt, 'param_groups'):
        assert all('params' in g for g in learn.opt.opt.param_groups)
    learn.fit(1)
    learn.path = tmp_path
    learn.save('ck', with_opt=True)
    learn.load('ck', with_opt=True)
    learn.opt.state_dict()  # what `export` saves

def test_export_after_lr_find_with_adamw(tmp_path):
    "F1: the everyday flow with a torch AdamW: fit, lr_find, fit, export, load"
    from functools import partial
    from fastai.optimizer import OptimWrapper
    import pickle
    from test_integration import exportable_learner
    learn = exportable_learner(tmp_path, opt_func=partial(OptimWrapper, opt=torch.optim.AdamW))
    learn.fit(1, 1e-3)
    learn.lr_find(num_it=10, show_plot=False)
    learn.fit_one_cycle(1, 1e-3)
    learn.export('l.pkl', pickle_module=pickle)
    load_learner(tmp_path/'l.pkl', pickle_module=pickle)

@pytest.mark.parametrize('opt', ['adam', 'ranger', 'torch_adamw', 'torch_adamw_tensor_lr'])
def test_training_after_lr_find_is_the_training_without_it(opt):
    "Weights, optimizer, RNG and DataLoader state all come back: the next fit gives the same bits as if lr_find never ran"
    a,b = make_learner(opt),make_learner(opt)
    a.fit(1); b.fit(1)
    a.lr_find(num_it=10, show_plot=False)
    a.fit(2); b.fit(2)
    sa,sb = full_state(a),full_state(b)
    del sa['opt'], sb['opt']  # different objects
    assert diff(sa, sb) is None, diff(sa, sb)

@pytest.mark.parametrize('snapshot', SNAPSHOTS)
def test_each_snapshot_choice_restores_bit_for_bit(snapshot):
    learn = make_learner('torch_adamw')
    learn.fit(1)
    before = full_state(learn)
    learn.lr_find(num_it=10, show_plot=False, snapshot=snapshot)
    assert_same(learn, before)

def test_non_persistent_buffers_come_back():
    "F10: a buffer registered with persistent=False (not in state_dict) is restored too"
    learn = make_learner()
    learn.fit(1)
    seen = learn.model.seen.clone()
    assert 'seen' not in learn.model.state_dict()
    learn.lr_find(num_it=10, show_plot=False)
    assert torch.equal(learn.model.seen, seen)

def test_tensors_come_back_into_their_objects():
    "Parameters, buffers, optimizer state and tensor hypers are the same objects after lr_find (tied weights stay tied)"
    learn = make_learner('torch_adamw_tensor_lr')
    learn.fit(1)
    opt = learn.opt.opt
    ids = ([id(p) for p in learn.model.parameters()], [id(b) for b in learn.model.buffers()],
           [id(v) for s in opt.state.values() for v in s.values()], [id(g['lr']) for g in opt.param_groups])
    learn.lr_find(num_it=10, show_plot=False)
    assert ids == ([id(p) for p in learn.model.parameters()], [id(b) for b in learn.model.buffers()],
                   [id(v) for s in opt.state.values() for v in s.values()], [id(g['lr']) for g in opt.param_groups])

def test_tied_weights_stay_tied():
    learn = make_learner()
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a,self.b = nn.Linear(1, 1),nn.Linear(1, 1)
            self.b.weight = self.a.weight
        def forward(self, x): return self.b(self.a(x))
    learn.model,learn.splitter = Tied(),lambda m: [list(m.parameters())]
    learn.fit(1)
    w = learn.model.a.weight.detach().clone()
    learn.lr_find(num_it=10, show_plot=False)
    assert learn.model.a.weight is learn.model.b.weight and torch.equal(learn.model.a.weight, w)

def test_replaced_buffer_and_lost_grad_come_back():
    "A buffer replaced by a new object and gradients set to None during the block come back with their values"
    learn = make_learner('torch_adamw')
    learn.fit(1)
    learn.model.lin.weight.grad = torch.full_like(learn.model.lin.weight, 3.)
    before = full_state(learn)
    with keep_state(learn):
        learn.model.bn.running_mean = torch.zeros(4)
        learn.model.lin.weight.grad = None
        learn.model.out.weight.grad = torch.zeros(1, 4, dtype=torch.float64).float()  # a new object
    assert_same(learn, before)

@pytest.mark.parametrize('exc', [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize('snapshot', SNAPSHOTS)
def test_restored_after_exception_and_interrupt(exc, snapshot):
    class Boom(Callback):
        def after_step(self):
            if self.train_iter == 3: raise exc('boom')
    learn = make_learner('torch_adamw')
    learn.fit(1)
    before = full_state(learn)
    with pytest.raises(exc): _lr_find_with(learn, Boom(), snapshot)
    assert_same(learn, before)
    learn.fit(1)

def _lr_find_with(learn, cb, snapshot):
    learn.add_cb(cb)
    try: learn.lr_find(num_it=10, show_plot=False, snapshot=snapshot)
    finally: learn.remove_cb(cb)

@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason='signals need the main thread')
def test_ctrl_c_during_restore_waits_for_the_restore():
    "A SIGINT arriving while keep_state restores is held until the restore is complete, then raised"
    learn = make_learner('torch_adamw')
    learn.fit(1)
    before = full_state(learn)
    import fastai_anneal.lr_find as lf
    orig = lf._restore_opt
    def slow(*a):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of the restore
        return orig(*a)
    lf._restore_opt = slow
    try:
        with pytest.raises(KeyboardInterrupt):
            with keep_state(learn): learn.fit(1)
    finally: lf._restore_opt = orig
    assert_same(learn, before)

def test_temporary_file_is_gone(tmp_path, monkeypatch):
    "The disk snapshot lives in an anonymous file under TMPDIR, gone when the block ends"
    import tempfile
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    learn = make_learner()
    learn.fit(1)
    with keep_state(learn):
        learn.fit(1)
    assert list(tmp_path.iterdir()) == []

def test_huge_end_lr_is_a_value_error():
    "F14: end_lr=10**400 is refused naming `end_lr` (no OverflowError)"
    learn,count = make_learner(),Count()
    learn.add_cb(count)
    with pytest.raises(ValueError, match='end_lr'): learn.lr_find(end_lr=10**400, show_plot=False)
    with pytest.raises(ValueError, match='start_lr'): learn.lr_find(start_lr=-10**400, show_plot=False)
    assert count.n == 0

@pytest.mark.parametrize('end_lr', [1e39, 1e300])
def test_end_lr_beyond_the_parameters_dtype_is_refused(end_lr):
    "An lr a float32 parameter cannot hold is refused upfront (torch raised RuntimeError mid-run), naming `end_lr`"
    learn = make_learner('sgd')
    with pytest.raises(ValueError, match='end_lr'): learn.lr_find(start_lr=1e-300, end_lr=end_lr, show_plot=False)

@pytest.mark.parametrize('start_lr', [1e-320, 5e-324, 1e-309])
def test_tiny_start_lr_refused_upfront(start_lr):
    "F18: a start_lr whose end/start ratio overflows is refused before any batch, naming `start_lr`"
    learn,count = make_learner(),Count()
    learn.fit(1)
    learn.add_cb(count)
    before = full_state(learn)
    count.n = 0
    with pytest.raises(ValueError, match='start_lr'): learn.lr_find(start_lr=start_lr, show_plot=False)
    assert count.n == 0
    assert_same(learn, before)
    # a linear ramp from a tiny start is fine (every lr finite)
    learn.lr_find(start_lr=start_lr, num_it=10, step_mode='lin', show_plot=False)
    assert np.isfinite(learn.recorder.lrs).all()

@pytest.mark.parametrize('kw,name', [(dict(snapshot='gpu'), 'snapshot'), (dict(snapshot=None), 'snapshot'), (dict(show_plot='yes'), 'show_plot'),
                                     (dict(show_plot=None), 'show_plot')])
def test_bad_snapshot_and_show_plot(kw, name):
    learn = make_learner()
    learn.fit(1)
    before = full_state(learn)
    with pytest.raises((ValueError, TypeError), match=name): learn.lr_find(**kw)
    assert_same(learn, before)
    with pytest.raises(ValueError, match='snapshot'):
        with keep_state(learn, 'nowhere'): pass

def test_store_round_trips_odd_tensors():
    "Every dtype and layout the store may meet: 0-d, empty, bool, half, complex, int, non-contiguous, channels_last"
    ts = [torch.tensor(1.5), torch.zeros(0), torch.tensor([True, False]), torch.randn(3, dtype=torch.half),
          torch.randn(3, dtype=torch.complex64), torch.arange(5), torch.randn(4, 3).t(), torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last),
          torch.tensor([float('nan'), -0., float('inf')]), torch.randn(3, dtype=torch.bfloat16), torch.randn(3).conj()]
    for where in SNAPSHOTS:
        store = _Store(where)
        try:
            saved = _save(store, dict(ts=ts))
            ref = [t.clone() for t in ts]
            for t in ts:
                if t.numel() and t.dtype != torch.bool and not t.is_conj(): t.zero_()
            back = _load(store, saved)['ts']
            for a,b,o in zip(back, ref, ts):
                assert a is o and a.dtype == b.dtype and a.shape == b.shape
                assert torch.equal(a.resolve_conj().reshape(-1).view(torch.uint8) if a.dtype != torch.bool else a, b.resolve_conj().reshape(-1).view(torch.uint8) if b.dtype != torch.bool else b)
        finally: store.close()

def test_store_keeps_what_cannot_go_to_disk_in_host_memory():
    "A sparse tensor (no flat bytes) is kept in host memory by the 'disk' store and comes back equal, as a new tensor if replaced"
    sp = torch.randn(3, 3).to_sparse()
    dense,store = sp.to_dense(),_Store('disk')
    try:
        saved = _save(store, {'s': sp})
        assert saved['s'].data is not None and saved['s'].data.device.type == 'cpu'
        del sp
        back = _load(store, saved, {'s': None})['s']
        assert back.is_sparse and torch.equal(back.to_dense(), dense)
    finally: store.close()
