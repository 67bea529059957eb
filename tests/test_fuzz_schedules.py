"""A table-driven fuzz of every public schedule constructor, of schedule evaluation, of JSON configs and of
`AnnealLR`. Each bad input must be refused with a ValueError/TypeError naming the argument, or accepted with only finite
values coming out (scalar and vectorised paths agreeing); each injected fault must leave the optimizer untouched.
Run with `-s` to see the counts (inputs tried / handled well, faults injected / survived)."""
import math, pickle, warnings
import numpy as np, pytest, torch
from torch import nn
import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt
from fastai_anneal.core import *
from fastai_anneal.schedules import *
from fastai_anneal.torch_sched import AnnealLR

def _nested(n):
    v = [1.]
    for _ in range(n): v = [v]
    return v

def _ragged(): return [1., [2., 3.]]

BAD = {'nan': math.nan, 'inf': math.inf, '-inf': -math.inf, 'huge_int': 10**400, '-huge_int': -10**400, 'neg': -1., 'neg_int': -3,
       'zero': 0., 'tiny': 1e-320, 'big': 1e300, 'max': 1.7e308, '-max': -1.7e308, 'str': '0.1', 'bytes': b'0.5', 'true': True, 'false': False, 'complex': 1+1j,
       'none': None, 'empty': [], 'list_str': ['0.1'], 'list_bool': [True, False], 'list_nan': [math.nan], 'list_huge': [10**400],
       'list_complex': [1+1j], 'np_complex': np.array([1+1j]), 'np_nan': np.array([math.nan]), 'np_2d': np.ones((2, 2)),
       'tensor_nan': torch.tensor(math.nan), 'tensor_bool': torch.tensor([True]), 'ragged': _ragged(), 'deep': _nested(3000),
       'object': object(), 'dict': {}, 'func': print, 'np_str': np.array(['0.1']), 'float_for_int': 2.5}

# constructor -> (good keyword arguments, arguments to fuzz)
CTORS = {
    'sched_lin': (sched_lin, dict(start=1e-3, end=1e-2)), 'sched_cos': (sched_cos, dict(start=1e-3, end=1e-2)),
    'sched_no': (sched_no, dict(start=1e-3, end=1e-2)), 'sched_exp': (sched_exp, dict(start=1e-3, end=1e-2)),
    'SchedPoly': (SchedPoly, dict(start=1e-3, end=1e-2, power=2.)),
    'combined_cos': (combined_cos, dict(pct=0.3, start=1e-3, middle=1e-2, end=1e-5)),
    'combine_scheds': (combine_scheds, dict(pcts=[0.4, 0.6], scheds=[sched_lin(0., 1.), sched_cos(1., 0.)])),
    'one_cycle': (one_cycle, dict(lr_max=1e-2, div=25., div_final=1e5, pct_start=0.25, three_phase=False, anneal='cos')),
    'sgdr': (sgdr, dict(n_cycles=3, cycle_len=1., lr_max=1e-2, cycle_mult=2, lr_min=0., cycle_decay=1., k=1.)),
    'cyclic': (cyclic, dict(base=1e-3, peak=1e-2, n_cycles=2, mode='triangular', gamma=1.)),
    'sched_step': (sched_step, dict(start=1e-2, pcts=[0.5, 0.75], gamma=0.1)),
    'sched_poly': (sched_poly, dict(start=1e-2, end=0., power=1., k=1.)),
    'sched_inv_sqrt': (sched_inv_sqrt, dict(start=1e-2, timescale=0.1)),
    'warmup': (warmup, dict(sched=sched_cos(1e-2, 0.), pct=0.1, anneal='lin', start=0.)),
    'warmup_cos': (warmup_cos, dict(lr_max=1e-2, pct_warmup=0.1, lr_min=0.)),
    'wsd': (wsd, dict(lr_max=1e-2, pct_warmup=0.1, pct_decay=0.2, decay='cosine', lr_min=0.)),
}
POS = np.linspace(0, 1, 41)

def _names_arg(e, arg):
    "Does error `e` name argument `arg`?"
    m = str(e)
    return f'`{arg}' in m or f"'{arg}'" in m or f'{arg}=' in m or f'{arg}[' in m

def _finite_everywhere(s):
    "Evaluate `s` scalar and vectorised; both must give the same finite values (or both refuse with ValueError)"
    try: vec = np.asarray(s(POS), dtype=np.float64)
    except ValueError: vec = None
    try: sca = np.array([s(float(p)) for p in POS], dtype=np.float64)
    except ValueError: sca = None
    if vec is None or sca is None: return vec is None and sca is None
    return np.isfinite(vec).all() and np.allclose(vec, sca, rtol=1e-12, atol=0, equal_nan=False)

def sweep_constructors():
    tried,good,bad = 0,0,[]
    for cname,(ctor,kw) in CTORS.items():
        for arg in kw:
            for vname,v in BAD.items():
                tried += 1
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter('error', RuntimeWarning)  # a silent overflow inside is a fault too
                        s = ctor(**{**kw, arg: v})
                        ok = _finite_everywhere(s) and repr(s) is not None
                        if ok:
                            try: s.to_dict()
                            except ValueError: pass
                except (ValueError, TypeError) as e: ok = _names_arg(e, arg)
                except Exception as e: ok = False; v = f'{type(e).__name__}: {e}'[:200]
                if ok: good += 1
                else: bad.append((cname, arg, vname, v if isinstance(v, str) else None))
    return tried,good,bad

def sweep_positions():
    tried,good,bad = 0,0,[]
    scheds = [ctor(**kw) for ctor,kw in CTORS.values()]
    for s in scheds:
        for vname,v in BAD.items():
            if vname in ('zero', 'neg', 'neg_int', 'big', 'max', '-max', 'tiny', 'huge_int', '-huge_int', 'inf', '-inf', 'float_for_int', 'false', 'np_2d'):
                continue  # numbers: valid positions (clipped), covered by `_finite_everywhere`
            tried += 1
            try:
                r = s(v)
                ok = np.asarray(r).size == 0  # an empty array of positions gives an empty array of values
            except (ValueError, TypeError) as e: ok = '`pos`' in str(e)
            except Exception: ok = False
            if ok: good += 1
            else: bad.append((repr(s), vname))
    return tried,good,bad

def _deep_config(n):
    d = {'type': 'sched_lin', 'start': 0., 'end': 1.}
    for _ in range(n): d = {'type': 'CombineScheds', 'pcts': [1.], 'scheds': [d]}
    return d

def _self_ref():
    d = {'type': 'warmup', 'pct': 0.1}; d['sched'] = d
    return d

CONFIGS = {'deep': _deep_config(3000), 'max_depth+1': _deep_config(MAX_DEPTH), 'self_ref': _self_ref(),
           'sgdr_1e6': {'type': 'sgdr', 'n_cycles': 1000000, 'cycle_len': 1., 'lr_max': 1e-2, 'cycle_mult': 1},
           'sgdr_2000': {'type': 'sgdr', 'n_cycles': 2000, 'cycle_len': 1., 'lr_max': 1e-2},
           'unknown': {'type': 'os.system', 'start': 1}, 'no_type': {'start': 1}, 'list': [1], 'str': 'sched_lin',
           'extra_arg': {'type': 'sched_lin', 'start': 0., 'end': 1., 'evil': 1}, 'bad_value': {'type': 'sched_lin', 'start': 'x', 'end': 1.},
           'nan': {'type': 'sched_lin', 'start': math.nan, 'end': 1.}, 'step_gamma': {'type': 'sched_step', 'start': 1., 'pcts': [0.3, 0.6], 'gamma': 1e300},
           'wide': {'type': 'sched_lin', 'start': -1e308, 'end': 1e308}, 'wide_list': {'type': 'sched_step', 'start': 1., 'pcts': [0.5]*200000}}

def sweep_configs():
    tried,good,bad = 0,0,[]
    for name,d in CONFIGS.items():
        tried += 1
        try: sched_from_dict(d); ok = False
        except ValueError: ok = True
        except Exception: ok = False
        if ok: good += 1
        else: bad.append(name)
    return tried,good,bad

def _opt(n=1):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    return torch.optim.SGD([{'params': l.parameters()} for l in m][:n], lr=0.1, momentum=0.9, weight_decay=1e-4)

def _valid(opt):
    "Are the optimizer's lr, momentum and weight decay valid (finite, >= 0, momentum <= 1)?"
    return all(math.isfinite(g[k]) and g[k] >= 0 for g in opt.param_groups for k in ('lr', 'momentum', 'weight_decay')) and \
           all(g['momentum'] <= 1 for g in opt.param_groups)

def _snapshot(opt): return [{k: v for k,v in g.items() if k != 'params'} for g in opt.param_groups]

ANNEAL_ARGS = {'scheds': [sched_lin(-1e-2, 1e-2), {'mom': sched_lin(0.9, 1.5)}, {'wd': sched_lin(0., -1.)}, {'lr': as_schedule(lambda p: math.nan)},
                          {'mom': sched_no(0.9, 0.9), 'momentum': sched_no(0.9, 0.9)}, {'lr': sched_lin([1e-2, 1e-3, 1e-4], 0.)}, {}, {'nope': sched_lin(0, 1)},
                          {1: sched_lin(0, 1)}, sched_lin, 'sched', None],
               'total_steps': [0, -1, 2.5, True, '10', None, 10**400, math.nan],
               'last_epoch': [True, '3', -5, 2.0, None, math.nan, 3]}

def sweep_annealr():
    tried,good,bad = 0,0,[]
    for arg,vs in ANNEAL_ARGS.items():
        for v in vs:
            tried += 1
            opt = _opt(2); last = _snapshot(opt)
            kw = {'scheds': sched_lin(1e-2, 0.), 'total_steps': 10, arg: v}
            try:
                s = AnnealLR(opt, **kw)
                for _ in range(10): last = _snapshot(opt); opt.step(); s.step()
                ok = _valid(opt)  # accepted: every value it wrote is valid
            except (ValueError, TypeError) as e: ok = (arg in str(e) or arg == 'scheds') and _snapshot(opt) == last
            except Exception: ok = False
            if ok: good += 1
            else: bad.append((arg, repr(v)[:60]))
    return tried,good,bad

class Boom(Exception): pass

def _faults():
    "Faults injected into a running AnnealLR: schedules failing or giving bad values mid-run, groups added, bad epochs"
    def at(p0, bad):  # a schedule fine until pos p0, then `bad()`
        return as_schedule(lambda p: bad() if p >= p0 else 1e-2)
    def raise_(e): raise e
    fs = {}
    for p0 in (0.0, 0.3, 0.9):
        fs[f'nan@{p0}'] = lambda p0=p0: {'lr': at(p0, lambda: math.nan)}
        fs[f'inf@{p0}'] = lambda p0=p0: {'lr': at(p0, lambda: math.inf)}
        fs[f'neg@{p0}'] = lambda p0=p0: {'lr': at(p0, lambda: -1e-3)}
        fs[f'mom_nan@{p0}'] = lambda p0=p0: {'lr': sched_lin(1e-2, 0.), 'mom': at(p0, lambda: math.nan)}
        fs[f'mom_2@{p0}'] = lambda p0=p0: {'mom': at(p0, lambda: 2.)}
        fs[f'zerodiv@{p0}'] = lambda p0=p0: {'lr': at(p0, lambda: 1/0)}
        fs[f'boom@{p0}'] = lambda p0=p0: {'lr': at(p0, lambda: raise_(Boom()))}
        fs[f'list@{p0}'] = lambda p0=p0: {'lr': at(p0, lambda: [1e-2, math.nan])}
    return fs

def sweep_faults():
    injected,survived,bad = 0,0,[]
    for name,make in _faults().items():
        for n_groups in (1, 2):
            injected += 1
            opt = _opt(n_groups); last = None
            try:
                s = AnnealLR(opt, make(), 10)
                for i in range(10):
                    last = _snapshot(opt); opt.step(); s.step()
                ok = False  # a fault must be noticed
            except (ValueError, TypeError, Boom) as e:
                ok = _valid(opt) and (last is None or _snapshot(opt) == last)
            except Exception as e: ok = False
            if ok: survived += 1
            else: bad.append((name, n_groups))
    # structural faults: a group added mid-run, bad epochs, a resume with a changed optimizer
    for kind in ('add_group', 'epoch_neg', 'epoch_str', 'epoch_bool'):
        injected += 1
        opt = _opt(2); s = AnnealLR(opt, {'lr': sched_lin([1e-2, 1e-3], 0.), 'mom': sched_lin(0.9, 0.8)}, 10)
        opt.step(); s.step(); before = _snapshot(opt)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                if kind == 'add_group': opt.add_param_group({'params': [nn.Parameter(torch.zeros(1))]}); before = _snapshot(opt); s.step()
                else: s.step({'epoch_neg': -3, 'epoch_str': '3', 'epoch_bool': True}[kind])
            ok = False
        except (ValueError, TypeError): ok = _snapshot(opt) == before and s.last_epoch == 1
        except Exception: ok = False
        if ok: survived += 1
        else: bad.append(kind)
    return injected,survived,bad

COUNTS = {}

@pytest.mark.parametrize('sweep', [sweep_constructors, sweep_positions, sweep_configs, sweep_annealr, sweep_faults], ids=lambda f: f.__name__)
def test_sweep(sweep):
    tried,good,bad = sweep()
    COUNTS[sweep.__name__] = tried,good
    print(f'\n{sweep.__name__}: {tried} tried, {good} handled well')
    assert not bad, bad

def test_totals():
    if len(COUNTS) < 5: pytest.skip('run with the sweeps')
    inputs = [v for k,v in COUNTS.items() if k != 'sweep_faults']
    print(f"\nbad inputs: {sum(t for t,_ in inputs)} tried, {sum(g for _,g in inputs)} handled well; "
          f"faults: {COUNTS['sweep_faults'][0]} injected, {COUNTS['sweep_faults'][1]} survived")

# Property: any finite floats as the numeric arguments of any shape: refused with ValueError/TypeError naming an argument,
# or accepted with finite values everywhere (scalar and vectorised paths agreeing)
from hypothesis import given, settings, strategies as st, HealthCheck

NUMERIC = {c: [a for a,v in kw.items() if isinstance(v, (int, float)) and not isinstance(v, bool)] for c,(_,kw) in CTORS.items()}
_floats = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0., 1e-320, 1e308, -1e308, 1., 0.5]),
                    st.integers(-10**6, 10**6))

@settings(max_examples=400, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted(c for c in NUMERIC if NUMERIC[c])), st.data())
def test_property_numeric_args(cname, data):
    ctor,kw = CTORS[cname]
    args = {a: data.draw(_floats, label=a) for a in NUMERIC[cname]}
    if cname in ('sgdr', 'cyclic'): args['n_cycles'] = data.draw(st.integers(1, 50), label='n_cycles')
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('error', RuntimeWarning)
            s = ctor(**{**kw, **args})
            assert _finite_everywhere(s), (s, s(POS))
    except (ValueError, TypeError) as e: assert any(_names_arg(e, a) for a in kw) or '`end`' in str(e) or '`start`' in str(e), e
