"""Tiny or huge arguments are refused with a clear ValueError (or accepted with finite values) and print nothing:
no numpy RuntimeWarning on the way, with warnings turned into errors"""
import warnings
import numpy as np, pytest, torch
from fastai.test_utils import synth_learner
from fastai_anneal.all import *

def weights(learn): return [p.detach().clone() for p in learn.model.parameters()]

@pytest.mark.parametrize('lr_max', [1e-2, np.array([1e-2]), None])
@pytest.mark.parametrize('kw', [dict(div=1e-320), dict(div_final=1e-320), dict(div=5e-324), dict(div_final=5e-324)])
def test_fit_one_cycle_tiny_div(kw, lr_max):
    learn = synth_learner()
    w = weights(learn)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        with pytest.raises(ValueError, match=f'`{list(kw)[0]}`'): learn.fit_one_cycle(1, lr_max, **kw)
    assert all(torch.equal(a, b) for a,b in zip(w, weights(learn)))

@pytest.mark.parametrize('make,arg', [(lambda: one_cycle(1e-2, div=1e-320), 'div'), (lambda: one_cycle([1e-3, 1e-2], div_final=1e-320), 'div_final'),
                                      (lambda: cos_decay(1., 0., 1e308), 'num_cycles'), (lambda: warmup_cos(1., 0.1, num_cycles=1e308), 'num_cycles'),
                                      (lambda: wsd(1., 0.1, 0.2, num_cycles=1.7e308), 'num_cycles'),
                                      (lambda: exp_decay(1., 0.5, 1e-320), 'pct_transition'),
                                      (lambda: one_cycle(1e-2, div_final=1e-310), 'div_final'), (lambda: one_cycle(1e-2, div=1e-310), 'div')])
def test_refused_without_warning(make, arg):
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        with pytest.raises(ValueError, match=f'`{arg}`'): make()

@pytest.mark.parametrize('pct_up', [1e-320, 5e-324, 1e-300])
def test_tiny_pct_up_is_finite_without_warning(pct_up):
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        c = cyclic(0., 1., 2, pct_up=pct_up)
        v = c(np.linspace(0, 1, 41))
    assert np.isfinite(v).all()
    np.testing.assert_allclose(v, [c(float(p)) for p in np.linspace(0, 1, 41)])
