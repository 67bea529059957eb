"AnnealLR: fastai_anneal schedules in plain PyTorch loops (values, tensors, resume, a real loop on digits)"
import copy, io, pickle
import numpy as np, pytest, torch
from torch import nn
from fastai_anneal.all import *

def model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

def batches(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 4, generator=g), torch.randn(16, 1, generator=g)) for _ in range(n)]

def train(m, opt, sched, data, record=None):
    for xb,yb in data:
        if record is not None: record.append([(float(g['lr']), g.get('momentum', g.get('betas', (None,))[0]), g['weight_decay']) for g in opt.param_groups])
        loss = nn.functional.mse_loss(m(xb), yb)
        loss.backward(); opt.step(); opt.zero_grad(); sched.step()

OPTS = {
    'sgd': lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-4),
    'adam': lambda ps: torch.optim.Adam(ps, lr=1e-3),
    'adamw': lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=1e-2),
}

SCHEDS = [sched_cos(1e-2, 1e-5), combined_cos(0.25, 1e-4, 1e-2, 1e-7), sched_exp(1e-6, 1e-1),
          combine_scheds([0.1, 0.9], [sched_lin(0., 1e-2), SchedPoly(1e-2, 0., 2.)])]

@pytest.mark.parametrize('s', SCHEDS, ids=repr)
@pytest.mark.parametrize('opt_name', list(OPTS))
def test_lr_equals_schedule(s, opt_name):
    m = model(); opt = OPTS[opt_name](m.parameters())
    n = 37
    sched = AnnealLR(opt, s, total_steps=n)
    rec = []
    train(m, opt, sched, batches(n), rec)
    np.testing.assert_allclose([r[0][0] for r in rec], s(np.arange(n)/n), rtol=1e-12)
    assert sched.get_last_lr()[0] == pytest.approx(s(1.))

def test_mom_betas_and_wd():
    for opt_name in OPTS:
        m = model(); opt = OPTS[opt_name](m.parameters())
        lr,mom,wd = sched_cos(1e-3, 1e-5), combined_cos(0.3, 0.95, 0.85, 0.95), sched_lin(0., 1e-2)
        sched = AnnealLR(opt, {'lr': lr, 'mom': mom, 'wd': wd}, total_steps=20)
        rec = []
        train(m, opt, sched, batches(20), rec)
        pos = np.arange(20)/20
        np.testing.assert_allclose([r[0][1] for r in rec], mom(pos), rtol=1e-12)
        np.testing.assert_allclose([r[0][2] for r in rec], wd(pos), rtol=1e-12)
        if opt_name != 'sgd': assert opt.param_groups[0]['betas'][1] == 0.999  # beta2 untouched

def test_torch_names_and_other_hypers():
    m = model(); opt = torch.optim.Adam(m.parameters(), lr=1e-3, eps=1e-8)
    sched = AnnealLR(opt, {'momentum': sched_no(0.8, 0.8), 'weight_decay': sched_no(1e-3, 0), 'eps': sched_lin(1e-8, 1e-6)}, total_steps=10)
    for _ in range(5): opt.step(); sched.step()
    g = opt.param_groups[0]
    assert g['betas'][0] == 0.8 and g['weight_decay'] == 1e-3 and g['eps'] == pytest.approx(5.05e-7) and g['lr'] == 1e-3  # lr not scheduled: untouched

def test_per_group():
    m = model()
    opt = torch.optim.SGD([{'params': m[0].parameters()}, {'params': m[2].parameters()}], lr=0.1, momentum=0.9)
    s = sched_cos(np.array([1e-3, 1e-2]), 0.)
    sched = AnnealLR(opt, {'lr': s, 'mom': sched_lin(0.95, 0.85)}, total_steps=10)
    rec = []
    train(m, opt, sched, batches(10), rec)
    np.testing.assert_allclose([[g[0] for g in r] for r in rec], s(np.arange(10)/10), rtol=1e-12)
    assert rec[3][0][1] == rec[3][1][1] == pytest.approx(0.92)

def test_holds_last_value_past_total_steps():
    m = model(); opt = OPTS['sgd'](m.parameters())
    s = combined_cos(0.25, 1e-3, 1e-2, 1e-6)
    sched = AnnealLR(opt, {'lr': s, 'mom': sched_lin(0.9, 0.8)}, total_steps=8)
    rec = []
    train(m, opt, sched, batches(15), rec)
    assert [r[0][0] for r in rec[8:]] == [s(1.)]*7 and [r[0][1] for r in rec[8:]] == [pytest.approx(0.8)]*7

def test_tensor_hypers_updated_in_place():
    m = model()
    opt = torch.optim.Adam(m.parameters(), lr=torch.tensor(1e-3), betas=(torch.tensor(0.9), torch.tensor(0.999)))
    lr_t,b1_t = opt.param_groups[0]['lr'],opt.param_groups[0]['betas'][0]
    s = sched_cos(1e-2, 1e-4)
    sched = AnnealLR(opt, {'lr': s, 'mom': sched_lin(0.95, 0.85)}, total_steps=10)
    train(m, opt, sched, batches(4))
    g = opt.param_groups[0]
    assert g['lr'] is lr_t and g['betas'][0] is b1_t
    assert float(lr_t) == pytest.approx(s(0.4), rel=1e-6) and float(b1_t) == pytest.approx(0.91, rel=1e-6)

def test_shared_tensor_lr_is_unshared_once():
    "torch gives every group the same default tensor lr: each group gets its own, once, then keeps it"
    m = model()
    opt = torch.optim.Adam([{'params': m[0].parameters()}, {'params': m[2].parameters()}], lr=torch.tensor(1e-3))
    sched = AnnealLR(opt, sched_lin([1e-3, 1e-2], 0.), 10)
    ts = [g['lr'] for g in opt.param_groups]
    assert ts[0] is not ts[1]
    for _ in range(5): opt.step(); sched.step()
    assert all(g['lr'] is t for g,t in zip(opt.param_groups, ts))
    np.testing.assert_allclose([float(t) for t in ts], [5e-4, 5e-3], rtol=1e-6)

@pytest.mark.parametrize('opt_name', list(OPTS))
def test_resume_equals_uninterrupted(opt_name):
    scheds = lambda: {'lr': combined_cos(0.25, 1e-4, 1e-2, 1e-7), 'mom': combined_cos(0.25, 0.95, 0.85, 0.95), 'wd': sched_lin(1e-4, 0.)}
    data,n,k = batches(30),30,13
    # uninterrupted
    m = model(); opt = OPTS[opt_name](m.parameters()); sched = AnnealLR(opt, scheds(), n)
    full = []; train(m, opt, sched, data, full)
    w_full = copy.deepcopy(m.state_dict())
    # interrupted after k steps, saved to bytes, resumed in new objects
    m = model(); opt = OPTS[opt_name](m.parameters()); sched = AnnealLR(opt, scheds(), n)
    part = []; train(m, opt, sched, data[:k], part)
    buf = io.BytesIO()
    torch.save({'model': m.state_dict(), 'opt': opt.state_dict(), 'sched': sched.state_dict()}, buf)
    buf.seek(0); ck = torch.load(buf)  # weights_only=True: the state holds no custom objects
    m = model(seed=5); opt = OPTS[opt_name](m.parameters()); sched = AnnealLR(opt, scheds(), n)
    m.load_state_dict(ck['model']); opt.load_state_dict(ck['opt']); sched.load_state_dict(ck['sched'])
    train(m, opt, sched, data[k:], part)
    assert part == full
    for a,b in zip(w_full.values(), m.state_dict().values()): assert torch.equal(a, b)

def test_load_state_dict_sets_values_in_any_order():
    m = model(); opt = OPTS['sgd'](m.parameters()); s = sched_cos(1e-2, 1e-5)
    sched = AnnealLR(opt, {'lr': s, 'mom': sched_lin(0.9, 0.8)}, 10)
    for _ in range(4): opt.step(); sched.step()
    sd = pickle.loads(pickle.dumps(sched.state_dict()))
    assert 'scheds' not in sd
    opt2 = OPTS['sgd'](model().parameters()); sched2 = AnnealLR(opt2, {'lr': s, 'mom': sched_lin(0.9, 0.8)}, 10)
    sched2.load_state_dict(sd)  # without the optimizer's state
    assert opt2.param_groups[0]['lr'] == pytest.approx(s(0.4)) and opt2.param_groups[0]['momentum'] == pytest.approx(0.86)
    assert sched2.last_epoch == 4 and sched2.get_last_lr() == [pytest.approx(s(0.4))]

@pytest.mark.parametrize('args,err,match', [
    (dict(total_steps=0), ValueError, 'total_steps'), (dict(total_steps=2.5), ValueError, 'total_steps'),
    (dict(total_steps=True), ValueError, 'total_steps'), (dict(scheds={'lrr': sched_lin(1, 0)}), ValueError, "no hyper-parameter 'lrr'"),
    (dict(scheds={'lr': sched_lin([1e-3, 1e-2, 1e-1], 0)}), ValueError, '3 per-group values'),
    (dict(scheds={}), ValueError, 'scheds'), (dict(scheds={1: sched_lin(1, 0)}), TypeError, 'keys'),
    (dict(scheds=sched_lin), TypeError, 'call'), (dict(scheds={'mom': sched_lin(0.9, 0.8)}), ValueError, "'mom'"),
])
def test_bad_args(args, err, match):
    m = model(); opt = torch.optim.SGD(m.parameters(), lr=0.1)
    if isinstance(args.get('scheds'), dict) and 'mom' in args['scheds']: opt = torch.optim.Adagrad(m.parameters(), lr=0.1)  # no momentum
    kw = {'scheds': sched_lin(1e-3, 0.), 'total_steps': 10, **args}
    with pytest.raises(err, match=match): AnnealLR(opt, **kw)
    assert opt.param_groups[0]['lr'] == 0.1  # nothing changed

def test_not_an_optimizer():
    with pytest.raises(TypeError, match='optimizer'): AnnealLR(object(), sched_lin(1, 0), 10)

def test_digits_one_cycle_plain_pytorch():
    from sklearn.datasets import load_digits
    from torch.utils.data import TensorDataset, DataLoader
    X,y = load_digits(return_X_y=True)
    X,y = torch.tensor(X/16., dtype=torch.float32),torch.tensor(y)
    torch.manual_seed(0)
    idx = torch.randperm(len(X)); trn,val = idx[360:],idx[:360]
    dl = DataLoader(TensorDataset(X[trn], y[trn]), batch_size=64, shuffle=True)
    m = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=1e-2)
    epochs = 3
    lr = combined_cos(0.25, 1e-2/25, 1e-2, 1e-2/1e5)
    sched = AnnealLR(opt, {'lr': lr, 'mom': combined_cos(0.25, 0.95, 0.85, 0.95)}, total_steps=epochs*len(dl))
    lrs = []
    for _ in range(epochs):
        for xb,yb in dl:
            lrs.append(opt.param_groups[0]['lr'])
            nn.functional.cross_entropy(m(xb), yb).backward(); opt.step(); opt.zero_grad(); sched.step()
    np.testing.assert_allclose(lrs, lr(np.arange(len(lrs))/len(lrs)), rtol=1e-12)
    with torch.no_grad(): acc = (m(X[val]).argmax(1) == y[val]).float().mean().item()
    assert acc > 0.9, acc

def test_accelerate():
    accelerate = pytest.importorskip('accelerate')
    acc = accelerate.Accelerator(cpu=True)
    m = model(); opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    s = sched_cos(1e-2, 1e-4)
    sched = AnnealLR(opt, s, total_steps=10)
    m,opt,sched = acc.prepare(m, opt, sched)
    lrs = []
    for xb,yb in batches(10):
        lrs.append(opt.param_groups[0]['lr'])
        acc.backward(nn.functional.mse_loss(m(xb), yb)); opt.step(); opt.zero_grad(); sched.step()
    np.testing.assert_allclose(lrs, s(np.arange(10)/10), rtol=1e-12)

def test_repr():
    opt = torch.optim.SGD(model().parameters(), lr=0.1)
    assert repr(AnnealLR(opt, sched_cos(1e-2, 0.), 10)) == "AnnealLR({'lr': sched_cos(0.01, 0.)}, total_steps=10)"
