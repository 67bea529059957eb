"""The shape of the code the team keeps: the user API in the star import, schedules whose `repr` reads
as a call with keywords, each formula written once, and arguments checked once at the boundary."""
import sys, collections, ast, inspect, textwrap
import numpy as np
import pytest
import fastai_anneal.core as core, fastai_anneal.schedules as shapes
from fastai_anneal.all import *
from fastai.test_utils import synth_learner

def test_star_import_is_the_user_api():
    ns = {}
    exec('from fastai_anneal.all import *', ns)
    names = set(ns) - {'__builtins__'}
    assert len(names) <= 50
    assert not {n for n in names if n.startswith('check_') or n.isupper()}  # plumbing stays home

def test_repr_writes_values_by_position_the_rest_by_keyword():
    for s,r in [(wsd(0.01, pct_warmup=0.1, pct_decay=0.2), 'wsd(0.01, pct_warmup=0.1, pct_decay=0.2)'),
                (one_cycle(1e-2, pct_start=0.3), 'one_cycle(0.01, pct_start=0.3)'),
                (exp_decay(1., 0.5, 0.25), 'exp_decay(1., rate=0.5, pct_transition=0.25)'),
                (SchedPoly(1., 0., 2.), 'SchedPoly(1., 0., power=2.)'),
                (sched_step(1., [0.5]), 'sched_step(1., [0.5])'),
                (warmup_cos(1., 0.1), 'warmup_cos(1.)')]:  # defaults left out
        assert repr(s) == r
        assert repr(eval(r)) == r

def _both(mod):
    "Schedule classes of `mod` that write both a scalar `value` and an array `values`"
    return {n for n,c in vars(mod).items() if isinstance(c, type) and issubclass(c, Schedule)
            and c.__module__ == mod.__name__ and {'value', 'values'} <= set(vars(c))}

def test_each_formula_written_once():
    # Schedule derives `value` from `values`; Annealer runs its one formula on floats or arrays; _Fn wraps a
    # callable of a float; _Shape hands both to the schedule it is built from; CombineScheds is the one
    # scalar twin (its phase lookup), for the per-step path of 1cycle, warmups and wsd
    assert _both(core) == {'Schedule', 'Annealer', '_Fn', 'CombineScheds'}
    assert _both(shapes) == {'_Shape'}

def _checker_calls(run):
    "How many times `run()` calls the package's check helpers (`check_*`, `_check*`)"
    n = collections.Counter()
    def count(frame, event, arg):
        co = frame.f_code
        if event == 'call' and 'fastai_anneal' in co.co_filename and co.co_name.startswith(('check_', '_check')):
            n[co.co_name] += 1
    sys.setprofile(count)
    try: run()
    finally: sys.setprofile(None)
    return sum(n.values())

def test_fit_one_cycle_checks_its_arguments_once():
    learn = synth_learner(n_trn=4)  # 4 batches
    with learn.no_bar(), learn.no_logging():
        assert _checker_calls(lambda: learn.fit_one_cycle(1)) <= 30

def test_schedules_changed_in_place_are_checked_again():
    learn = synth_learner(n_trn=4)
    cb = ParamScheduler({'lr': sched_lin(1e-3, 1e-2)})
    cb.scheds['lr'] = 'not a schedule'
    with learn.no_bar(), learn.no_logging():
        try: learn.fit(1, cbs=cb)
        except TypeError as e: assert "scheds['lr']" in str(e)
        else: raise AssertionError('a schedule changed in place must be checked')
    assert cb not in learn.cbs

def test_check_helpers_read_gt_ge_lt_le():
    from fastai_anneal.core import check_num, check_int, check_duration
    for call,msg in [(lambda: check_num('x', 0., gt=0), r'`x` must be in \(0, inf\], got 0.0'),
                     (lambda: check_num('x', 1., lt=1), r'`x` must be in \[-inf, 1\), got 1.0'),
                     (lambda: check_num('x', 2., ge=0, le=1), r'`x` must be in \[0, 1\], got 2.0'),
                     (lambda: check_int('n', 5, ge=1, lt=5), '`n` must be an integer >= 1 and < 5, got 5'),
                     (lambda: check_duration('p', 1., ge=0, lt=1), r'`p` must be in \[0, 1\), got 1.0')]:
        with pytest.raises(ValueError, match=msg): call()
    assert check_num('x', 0, ge=0) == 0. and check_int('n', -3, ge=None) == -3

def _schedule_classes():
    "Every schedule class of the package's own modules"
    mods = core, shapes
    return [c for m in mods for c in vars(m).values()
            if isinstance(c, type) and issubclass(c, Schedule) and c.__module__ == m.__name__]

def test_constructors_never_return_early():
    "No half-built objects: a constructor runs to its end (shapes with units build once resolved)"
    for c in _schedule_classes():
        if '__init__' not in vars(c): continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(c.__init__)))
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.Return)], c.__name__

def test_unresolved_schedules_keep_their_methods():
    "A schedule with units refuses evaluation in `Schedule.__call__`, not by methods set on it"
    for s in [one_cycle(1., pct_start='5ba'), warmup(sched_cos(1., 0.), '2ba'), wsd(1., '1ba', '2ba'),
              warmup_cos(1., '3ba'), combine_scheds(['2ba', None], [sched_no(1., 1.)]*2)]:
        assert not {'value', 'values'} & set(vars(s))
        with pytest.raises(ValueError, match='resolve'): s(0.5)
        assert s.resolve(10)(0.5) == pytest.approx(s.resolve(10)(0.5))

def test_every_public_argument_has_a_docments_comment():
    "show_doc renders an argument table for the whole user API and the Learner methods"
    from fastcore.docments import docments
    from fastai.learner import Learner
    import fastai_anneal.all as fa
    fns = [getattr(fa, n) for n in fa.__all__]
    fns = [f.__init__ if isinstance(f, type) and '__init__' in vars(f) else f for f in fns if callable(f)]
    fns += [getattr(Learner, n) for n in ('fit_one_cycle', 'fit_flat_cos', 'fit_sgdr', 'fine_tune',
                                          'fit_warmup_cos', 'fit_wsd', 'lr_find', 'cooldown', 'fit_budget')]
    missing = {}
    for f in fns:
        try: sig,doc = inspect.signature(f),docments(f, full=False)
        except (TypeError, ValueError): continue  # builtins and aliases without a signature
        ps = [k for k,p in sig.parameters.items() if k != 'self' and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        if [k for k in ps if not doc.get(k)]: missing[getattr(f, '__qualname__', f)] = [k for k in ps if not doc.get(k)]
    assert not missing, missing

def test_export_cells_fit_a_screen():
    "One concept per export cell: at most 60 lines, half of them at most 20"
    import glob, statistics, nbformat
    from pathlib import Path
    nbs = Path(__file__).parent.parent/'nbs'
    sizes = {}
    for f in sorted(nbs.glob('*.ipynb')):
        for c in nbformat.read(f, as_version=4).cells:
            if c.cell_type == 'code' and c.source.split('\n')[0].strip().startswith('#| export'):
                sizes[f'{f.name} {c.get("id")}'] = len(c.source.splitlines())
    assert max(sizes.values()) <= 60, {k: n for k,n in sizes.items() if n > 60}
    assert statistics.median(sizes.values()) <= 20

def test_validation_is_sparse():
    "Arguments' rules live in signatures (`div:Real(gt=0)`) and named helpers: one statement per 20 lines"
    import re
    from pathlib import Path
    files = [f for f in Path(core.__file__).parent.glob('*.py') if f.name != '_modidx.py']
    lines = [l for f in files for l in f.read_text().splitlines()]
    checks = sum(bool(re.search(r'\bcheck_\w+\(', l)) and 'def check_' not in l for l in lines)
    raises = sum(bool(re.search(r'\braise\b', l)) for l in lines)
    assert len(lines) / (checks + raises) >= 20

def test_rules_run_before_the_body():
    "A rule in an annotation is shown by the signature and refuses a bad value before anything runs"
    assert inspect.signature(one_cycle).parameters['div'].annotation == 'Real(gt=0)'
    body = []
    @core.checks
    def probe(start:core.Param, n:core.Int(ge=1)=3): body.append((start, n))
    with pytest.raises(ValueError, match='`n` must be an integer >= 1, got 0'): probe(1., n=0)
    with pytest.raises(TypeError, match='`start` must be a real number'): probe('a')
    assert body == []
    probe(np.array([1, 2]))
    assert body == [([1., 2.], 3)]  # the checked value: a list of floats
