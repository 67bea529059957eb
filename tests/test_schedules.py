"Schedule objects: vectorisation, pickling, repr, bad input, and properties checked with hypothesis"
import math, pickle
import numpy as np, pytest, torch
from hypothesis import given, settings, strategies as st
from fastai_anneal.all import *

def all_scheds():
    return [sched_lin(1., 2.), sched_cos(2, 1e-2), sched_no(3., 0.), sched_exp(1e-7, 10.), SchedPoly(1., 0., 2.),
            combined_cos(0.25, 1e-3, 1e-2, 1e-7), combine_scheds([0.7, 0.2, 0.1], [sched_lin(0, 1), sched_no(1, 1), sched_cos(1, 0)]),
            combine_scheds([1/6]*6, [sched_cos(i, i+1) for i in range(6)]),
            combine_scheds([0.5, 0.5], [combined_cos(0.5, 0, 1, 0), sched_exp(1, 0.01)]),
            combined_cos(0.3, np.array([1e-4, 1e-3, 1e-2]), [1e-3, 1e-2, 1e-1], 0.)]

@pytest.mark.parametrize('f', all_scheds(), ids=repr)
def test_vectorised_equals_elementwise(f):
    pos = np.linspace(0, 1, 101)
    ref = np.array([f(float(p)) for p in pos])
    np.testing.assert_allclose(f(pos), ref, rtol=1e-12)
    t = f(torch.tensor(pos))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64
    np.testing.assert_allclose(t.numpy(), ref, rtol=1e-12)
    t32 = f(torch.tensor(pos, dtype=torch.float32))
    assert t32.dtype == torch.float32 and t32.shape == ref.shape
    assert f(pos.reshape(1, 101, 1)).shape == (1, 101, 1) + ref.shape[1:]
    assert f(np.float32(0.5)) == pytest.approx(f(0.5)) and f(torch.tensor(0.5)) == pytest.approx(f(0.5))

@pytest.mark.parametrize('f', all_scheds(), ids=repr)
def test_pickle_and_repr(f):
    pos = np.linspace(0, 1, 33)
    for g in (pickle.loads(pickle.dumps(f)), eval(repr(f))):
        np.testing.assert_array_equal(g(pos), f(pos))
        assert repr(g) == repr(f)

def test_scalar_types():
    f = sched_cos(2, 1e-2)
    assert type(f(0.5)) is float and type(f(torch.tensor(0.5))) is float and type(f(np.float64(0.5))) is float and type(f(1)) is float
    g = sched_lin([1., 2.], 3.)
    assert isinstance(g(0.5), np.ndarray) and g(0.5).shape == (2,)

def test_user_annealer_with_math():
    @annealer
    def sched_sqrt(start, end, pos): return start + math.sqrt(pos)*(end-start)
    f = sched_sqrt(0, 1)
    np.testing.assert_allclose(f(np.array([0., 0.25, 1.])), [0., 0.5, 1.])
    assert repr(f) == 'sched_sqrt(0., 1.)'

@pytest.mark.parametrize('make,msg', [
    (lambda: combine_scheds([0.5, 0.6], [sched_no(1, 1)]*2), 'sum to 1'),
    (lambda: combine_scheds([1.2, -0.2], [sched_no(1, 1)]*2), 'pcts[1]'),
    (lambda: combine_scheds([], []), 'must not be empty'),
    (lambda: combine_scheds([1.], [sched_no(1, 1)]*2), 'same length'),
    (lambda: combine_scheds([0.5, float('nan')], [sched_no(1, 1)]*2), 'pcts[1]'),
    (lambda: combine_scheds([1.], [sched_cos]), 'scheds[0]'),
    (lambda: combine_scheds([1.], [3.]), 'scheds[0]'),
    (lambda: sched_exp(0, 1e-2), 'non-zero'),
    (lambda: sched_exp(1, 0), 'non-zero'),
    (lambda: sched_exp(-1, 1e-2), 'same sign'),
    (lambda: SchedExp([1., 0.], 1.), 'non-zero'),
    (lambda: sched_lin(float('nan'), 1), '`start`'),
    (lambda: sched_cos(1, float('inf')), '`end`'),
    (lambda: sched_lin('a', 1), '`start`'),
    (lambda: sched_lin([1, 2], [1, 2, 3]), 'different lengths'),
    (lambda: SchedPoly(1, 0, -1), '`power`'),
    (lambda: combined_cos(1.5, 1, 2, 3), '`pct`'),
    (lambda: combine_scheds([0.5, 0.5], [sched_lin([1, 2], 0), sched_lin([1, 2, 3], 0)]), 'different lengths'),
    (lambda: sched_lin(0, 1)(float('nan')), '`pos`'),
    (lambda: sched_lin(0, 1)(np.array([0.5, np.nan])), '`pos`'),
    (lambda: sched_lin(0, 1)('a'), '`pos`'),
])
def test_bad_input(make, msg):
    with pytest.raises((ValueError, TypeError), match=None) as e: make()
    assert msg in str(e.value)

def test_sums_within_tolerance():
    for pcts in ([0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [1/6]*6, [0.1]*10):
        f = combine_scheds(pcts, [sched_lin(i, i+1) for i in range(len(pcts))])
        assert f(1.) == pytest.approx(len(pcts))

def test_zero_length_phases():
    f = combine_scheds([0., 1., 0.], [sched_no(5, 5), sched_lin(0, 1), sched_no(7, 7)])
    np.testing.assert_allclose(f(np.array([0., 0.5, 1., 1.2])), [0., 0.5, 1., 1.2])
    g = combined_cos(0., 1., 2., 3.)
    assert g(0.) == 2. and g(1.) == 3.

fracs = st.lists(st.floats(0.05, 1.), min_size=1, max_size=6)
vals = st.floats(1e-6, 10.)

@settings(max_examples=100, deadline=None)
@given(fracs, st.lists(vals, min_size=7, max_size=7))
def test_continuity_at_joins(ws, vs):
    "Phases that meet at the same value give a continuous schedule: no jump at the joins"
    pcts = [w/sum(ws) for w in ws]
    f = combine_scheds(pcts, [sched_cos(vs[i], vs[i+1]) for i in range(len(pcts))])
    edges = np.cumsum(pcts)[:-1]
    for e in edges:
        assert f(float(e) - 1e-9) == pytest.approx(f(float(e)), rel=1e-6, abs=1e-9)

@settings(max_examples=100, deadline=None)
@given(fracs, st.lists(vals, min_size=7, max_size=7), st.floats(0., 1.))
def test_values_between_endpoints(ws, vs, p):
    pcts = [w/sum(ws) for w in ws]
    kinds = [sched_lin, sched_cos, sched_exp]
    f = combine_scheds(pcts, [kinds[i % 3](vs[i], vs[i+1]) for i in range(len(pcts))])
    edges = np.concatenate([[0.], np.cumsum(pcts)])
    i = min(np.searchsorted(edges, p, side='right') - 1, len(pcts) - 1)
    lo,hi = sorted((vs[i], vs[i+1]))
    assert lo*(1-1e-9) <= f(p) <= hi*(1+1e-9)

@settings(max_examples=50, deadline=None)
@given(st.floats(0., 1.), st.floats(1e-5, 1.), st.floats(1.01, 1e3), st.floats(1.01, 1e6))
def test_one_cycle_shape(pct, lr, div, div_final):
    f = combined_cos(pct, lr/div, lr, lr/div_final)
    x = np.linspace(0, 1, 257)
    y = f(x)
    assert np.isfinite(y).all() and y.max() <= lr*(1+1e-9) and y.min() >= min(lr/div, lr/div_final)*(1-1e-9)
    np.testing.assert_allclose(y, [f(float(p)) for p in x], rtol=1e-12)
