"""What torch and fastai take, we take: `AnnealLR.step(epoch)` with fractional epochs (torch's SGDR recipe),
0-d tensors and numpy scalars for numbers, torch's spellings and value ranges (MultiStepLR's unsorted or
repeated milestones and gamma=0, PolynomialLR's power=0, OneCycleLR's 'linear', timm's tanh bounds)"""
import math
from fractions import Fraction
import numpy as np, pytest, torch
from torch.optim import lr_scheduler as sch
from fastcore.foundation import L
from fastai_anneal.all import *
from test_upstream import lrs  # the lr of scheduler `make(opt)` at each of `n` steps

def sgd(lr=1.):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)


def grid(n=41): return np.linspace(0, 1, n)

# AnnealLR.step(epoch): fractional epochs, as torch documents for CosineAnnealingWarmRestarts

def sgdr_steps(T_0, T_mult, n_cycles): return sum(T_0 * T_mult**i for i in range(n_cycles))

@pytest.mark.parametrize('T_0,T_mult,eta_min,iters', [(2, 2, 0.1, 5), (3, 1, 0., 7), (1, 3, 0.01, 4), (4, 2, 0., 3)])
def test_fractional_epochs_match_torch_sgdr(T_0, T_mult, eta_min, iters):
    n = 3
    E = sgdr_steps(T_0, T_mult, n)
    fractional = lambda s, i: s.step((i // iters) + (i % iters) / iters)  # torch's `scheduler.step(epoch + i / iters)`
    ref = lrs(lambda o: sch.CosineAnnealingWarmRestarts(o, T_0=T_0, T_mult=T_mult, eta_min=eta_min), E*iters, step=fractional)
    got = lrs(lambda o: AnnealLR(o, sgdr(n, 1, 1., cycle_mult=T_mult, lr_min=eta_min), total_steps=E), E*iters, step=fractional)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-15)

def test_plain_step_after_a_fractional_one_keeps_the_fraction():
    "torch's SGDR: `step()` after `step(2.5)` is at 3.5"
    ref = lrs(lambda o: sch.CosineAnnealingWarmRestarts(o, T_0=10, eta_min=0.), 6, step=lambda s, i: s.step(2.5) if i == 1 else s.step())
    got = lrs(lambda o: AnnealLR(o, sgdr(1, 1, 1.), total_steps=10), 6, step=lambda s, i: s.step(2.5) if i == 1 else s.step())
    np.testing.assert_allclose(got, ref, rtol=1e-12)

@pytest.mark.parametrize('epoch', [np.float64(2.5), torch.tensor(2.5), Fraction(5, 2), np.float32(2.5)])
def test_epoch_types(epoch):
    opt = sgd(); s = AnnealLR(opt, sched_lin(1., 0.), 10)
    with pytest.warns(UserWarning): s.step(epoch)
    assert opt.param_groups[0]['lr'] == pytest.approx(0.75) and s.last_epoch == 2

def test_fraction_survives_state_dict_and_refusals():
    opt = sgd(); s = AnnealLR(opt, sched_lin(1., 0.), 10)
    with pytest.warns(UserWarning): s.step(2.5)
    opt2 = sgd(); s2 = AnnealLR(opt2, sched_lin(1., 0.), 10)
    s2.load_state_dict(s.state_dict())
    assert opt2.param_groups[0]['lr'] == pytest.approx(0.75)
    s2.step()
    assert opt2.param_groups[0]['lr'] == pytest.approx(0.65)
    for bad in [-0.5, math.nan, math.inf, True]:
        with pytest.warns(UserWarning), pytest.raises((ValueError, TypeError), match='`epoch`'): s2.step(bad)
        assert s2.last_epoch == 3 and opt2.param_groups[0]['lr'] == pytest.approx(0.65)

# Numbers as torch and numpy give them

def test_zero_dim_tensors_and_numpy_scalars():
    want = one_cycle(1e-2, div=25., pct_start=0.3)(grid())
    for lr,div,pct in [(torch.tensor(1e-2, dtype=torch.float64), np.float32(25.), torch.tensor(0.3, dtype=torch.float64)),
                       (np.float64(1e-2), np.int64(25), np.float64(0.3)), (np.array(1e-2), np.array(25.), Fraction(3, 10))]:
        np.testing.assert_allclose(one_cycle(lr, div=div, pct_start=pct)(grid()), want, rtol=1e-12)
    assert sgdr(torch.tensor(3), np.int64(1), 1.).n_cycles == 3 and isinstance(sgdr(np.int32(2), 1, 1.).n_cycles, int)
    assert sched_lin([torch.tensor(1.), np.float64(2.)], 0.).start == [1., 2.]
    assert warmup(sched_no(1., 1.), 0.1, prefix=torch.tensor(True)).prefix is True
    for bad in [torch.tensor([1., 2.]), torch.tensor(True), torch.tensor(1+1j)]:
        with pytest.raises(TypeError, match='`div`'): one_cycle(1., div=bad)

def test_combine_scheds_takes_what_fastai_takes():
    "fastai's combine_scheds takes pcts as a tensor, and fastcore's `L`"
    want = combine_scheds([0.3, 0.7], [sched_lin(0., 1.), sched_cos(1., 0.)])(grid())
    for pcts,scheds in [(torch.tensor([0.3, 0.7], dtype=torch.float64), [sched_lin(0., 1.), sched_cos(1., 0.)]),
                        (L(0.3, 0.7), L(sched_lin(0., 1.), sched_cos(1., 0.))), (np.array([0.3, 0.7]), (sched_lin(0., 1.), sched_cos(1., 0.)))]:
        np.testing.assert_allclose(combine_scheds(pcts, scheds)(grid()), want)
    for bad in [torch.tensor(0.5), 'ab', {'a': 1}, 3]:
        with pytest.raises(TypeError, match='`pcts`'): combine_scheds(bad, [sched_lin(0., 1.)])

# torch's spellings and ranges

@pytest.mark.parametrize('T,pct', [(100, 0.25), (37, 0.2)])
def test_one_cycle_linear_is_torch(T, pct):
    ref = lrs(lambda o: sch.OneCycleLR(o, 1e-2, total_steps=T, pct_start=pct, anneal_strategy='linear', cycle_momentum=False), T)
    f = one_cycle(1e-2, div_final=25*1e4, pct_start=pct, anneal='linear', total_steps=T)  # torch's defaults
    np.testing.assert_allclose(f(np.arange(T)/T), ref, rtol=1e-12, atol=1e-18)
    assert repr(f) == repr(one_cycle(1e-2, div_final=25*1e4, pct_start=pct, anneal='lin', total_steps=T))

def test_other_spellings():
    assert warmup(sched_no(1., 1.), 0.1, anneal='cosine').anneal == 'cos'
    s = wsd(1., 0.1, 0.2, decay='lin', warmup='cos')
    assert (s.decay, s.warmup) == ('linear', 'cosine')
    with pytest.raises(ValueError, match='`anneal`'): one_cycle(1., anneal='exp')

@pytest.mark.parametrize('milestones,gamma', [([6, 3], 0.5), ([3, 3, 7], 0.5), ([2, 5], 0.)])
def test_multistep_milestones_and_gamma_as_torch(milestones, gamma):
    "torch's MultiStepLR takes milestones in any order, repeated ones applying gamma twice, and gamma=0"
    T = 10
    ref = lrs(lambda o: sch.MultiStepLR(o, milestones, gamma), T)
    np.testing.assert_allclose(sched_step(1., [m/T for m in milestones], gamma)(np.arange(T)/T), ref, rtol=1e-12)

def test_poly_power_zero_as_torch():
    T = 10
    ref = lrs(lambda o: sch.PolynomialLR(o, total_iters=T, power=0.), T)
    np.testing.assert_allclose(sched_poly(1., 0., 0.)(np.arange(T)/T), ref)
    assert (SchedPoly(1., 2., 0.)(grid()) == 2.).all()  # fastai's: pos**0 is 1

def test_ranges_upstream_takes():
    assert (cos_decay(1., 0., num_cycles=0.)(grid()) == 1.).all()  # transformers: a constant lr
    assert (warmup_cos(1., 0.1, num_cycles=0.)(grid())[5:] == 1.).all()
    up = sched_tanh(0., 1., lb=3., ub=-7.)(grid())  # timm takes lb > ub: the curve runs the other way
    assert np.isfinite(up).all() and (np.diff(up) <= 0).all()
    assert (sched_tanh(1., 0., lb=2., ub=2.)(grid()) == sched_tanh(1., 0., lb=2., ub=2.)(0.)).all()
    a,b = with_noise(sched_no(1., 1.), 0., noise_seed=-3),with_noise(sched_no(1., 1.), 0., noise_seed=-3)
    np.testing.assert_array_equal(a(grid()), b(grid()))
    assert not np.array_equal(a(grid()), with_noise(sched_no(1., 1.), 0., noise_seed=3)(grid()))
    c = cyclic(0., 1., 2, mode='exp_range', gamma=0.)
    assert c(0.25) == 0. and np.isfinite(c(grid())).all()

def test_state_without_a_fraction_clears_it():
    opt = sgd(); s = AnnealLR(opt, sched_lin(1., 0.), 10)
    plain = AnnealLR(sgd(), sched_lin(1., 0.), 10).state_dict()  # saved before any fractional step
    with pytest.warns(UserWarning): s.step(2.5)
    s.load_state_dict(plain)
    s.step()
    assert s.last_epoch == 1 and opt.param_groups[0]['lr'] == pytest.approx(0.9)

@pytest.mark.parametrize('T,pct,anneal', [(100, 0.6, 'cos'), (37, 0.8, 'linear'), (50, 1.0, 'cos'), (10, 0.7, 'linear')])
def test_three_phases_past_half_as_torch(T, pct, anneal):
    "torch's OneCycleLR takes three_phase with pct_start > 0.5: the second phase is cut at the end of training"
    ref = lrs(lambda o: sch.OneCycleLR(o, 1e-2, total_steps=T, pct_start=pct, three_phase=True, anneal_strategy=anneal,
                                       cycle_momentum=False), T)
    f = one_cycle(1e-2, div_final=25*1e4, pct_start=pct, three_phase=True, anneal=anneal, total_steps=T)
    np.testing.assert_allclose(f(np.arange(T)/T), ref, rtol=1e-12, atol=1e-18)
    assert f(1.) == pytest.approx(ref[-1])
    g = one_cycle(1e-2, pct_start=pct, three_phase=True, anneal=anneal)  # the same cut without torch's step offsets
    assert g(pct) == pytest.approx(1e-2) and np.isfinite(g(grid())).all()
