#!/usr/bin/env python3
"""Run fastai's own notebooks (its test suite) cell by cell, as they are and with the plugin
(`from fastai_anneal.all import *` run first), and list every cell that passes without the plugin
and fails with it.

    python tools/run_fastai_nbs.py [DIR] [-n 14_callback.schedule ...] [--flags slow]

DIR (or FASTAI_NBS) is a folder of fastai's notebooks: `nbs/` of a fastai checkout matching the
installed fastai. Default selection: the core notebooks (`ALWAYS`) and every notebook whose code
calls `fit_one_cycle`, `lr_find`, `fine_tune` or `ParamScheduler`. Cells run as `nbdev-test` runs
them: the cells `nb_test_cells` keeps, fastai's test flags skipped (`slow`, `cuda`, `multicuda`,
`cpp`; `--flags` runs some anyway), `skip_exec` notebooks skipped (`--skip-exec` runs them), in
the notebook's folder, with `IN_TEST=1`. Unlike `nbdev-test`, a failing cell does not stop the
notebook: each cell gets a verdict. Each notebook runs in its own process, one at a time, under
`nice`, with one thread, a time limit and the random generators seeded before each cell.

Three runs per notebook: as is; with the fastai modules the plugin imports imported first (a
control: `13a_learner` defines `fastai.learner` itself, and importing the installed one first
changes `defaults.callbacks`); with the plugin. The first two are cached (FASTAI_NBS_CACHE, default
/tmp/fastai_nbs_cache), keyed by the notebook's text and the fastai and torch versions. A cell that
fails in the control too is shown but not counted.

fastai's notebooks define the library they document: their export cells redefine `ParamScheduler`,
`fit_one_cycle`... and patch them onto `Learner` again. With the plugin, the names and patches it
installs are put back after every export cell, so that the test cells exercise the plugin, as in a
user's session (a test cell may still mock a method, as `20a_distributed` mocks `_broadcast`).
`--no-reassert` leaves the notebook's definitions in place.

Exit status 1 if a cell fails only with the plugin and is not in `ALLOWED` (fastai-private tests).
Not part of the package (tools/ is outside it and out of the sdist)."""
import argparse, hashlib, json, os, re, subprocess, sys, time
from pathlib import Path

SKIP_FLAGS = ['slow', 'cuda', 'multicuda', 'cpp', 'notest']
CALLS = re.compile(r'fit_one_cycle|lr_find|fine_tune|ParamScheduler')
ALWAYS = ['12_optimizer', '13a_learner', '14_callback.schedule', '17_callback.tracker',
          '18_callback.fp16', '18a_callback.training', '20a_distributed']
PLUGIN = 'from fastai_anneal.all import *'
VERSION = 3  # of the cached results' format and of how cells are run

# (notebook, text found in the cell, why a failure there is not a fault of the plugin)
ALLOWED = []

def _src(cell):
    s = cell['source']
    return s if isinstance(s, str) else ''.join(s)

def select(nbs_dir, names=None):
    "The notebooks to run: `names`, else the core ones and every one calling the replaced methods"
    nbs_dir = Path(nbs_dir)
    if names: return [nbs_dir/(n if n.endswith('.ipynb') else n+'.ipynb') for n in names]
    res = []
    for p in sorted(nbs_dir.glob('*.ipynb')):
        cells = json.loads(p.read_text())['cells']
        code = '\n'.join(_src(c) for c in cells if c['cell_type'] == 'code')
        if p.stem in ALWAYS or CALLS.search(code): res.append(p)
    return res

def _test_cells(path, force=(), skip_exec=False):
    "The cells `nbdev-test` runs in the notebook at `path`; with `skip_exec`, even if marked so"
    from nbdev.test import nb_test_cells
    return _all_cells(path, force) if skip_exec else nb_test_cells(path, SKIP_FLAGS, list(force))

def _all_cells(path, force):
    "The cells `nb_test_cells` keeps, even in a notebook marked `skip_exec` (fastai's GPU ones)"
    import tempfile
    from nbdev.test import nb_test_cells
    txt = Path(path).read_text().replace('skip_exec: true', 'skip_exec: false')
    with tempfile.TemporaryDirectory() as d:
        f = Path(d)/Path(path).name
        f.write_text(txt)
        return nb_test_cells(f, SKIP_FLAGS, list(force))

# ---- the worker: one notebook, one mode, in its own process ----

def _classes():
    "Every class defined in a loaded fastai module"
    seen = {}
    for name,m in list(sys.modules.items()):
        if not name.startswith('fastai.'): continue
        for o in list(vars(m).values()):
            if isinstance(o, type) and str(o.__module__).startswith('fastai.'): seen[id(o)] = o
    return list(seen.values())

def _import_fastai(mods):
    "Import the fastai modules `mods` (those the plugin imports), as the plugin would"
    import importlib
    for m in mods:
        try: importlib.import_module(m)
        except ImportError: pass

def _plugin_state(run_plugin, mods):
    "Run `run_plugin` and return what it installed: (names -> objects, [(class, attr, object)])"
    _import_fastai(mods)
    before = {c: dict(vars(c)) for c in _classes()}
    run_plugin()
    import fastai.callback.schedule as fs, fastai_anneal.all as fa
    names = {n: getattr(fa, n) for n in fs.__all__ if hasattr(fa, n)}
    attrs = [(c, k, v) for c,d in before.items() for k,v in vars(c).items()
             if d.get(k) is not v and not k.startswith('_orig_')]
    return names, attrs

def _reassert(ns, names, attrs):
    "Put the plugin's names in the namespace `ns` and its patches on fastai's classes back"
    for n,o in names.items():
        if n in ns and ns[n] is not o: ns[n] = o
    for c,k,v in attrs:
        for t in {c, ns.get(c.__name__)}:
            if isinstance(t, type) and t.__dict__.get(k) is not v: setattr(t, k, v)

def _exports(cell):
    "Whether `cell` is an export cell: fastai's own code, which the plugin replaces"
    return any(d.startswith('export') for d in (getattr(cell, 'directives_', None) or {}))

def _seed():
    "The same random state before each cell in every mode, so that the modes see the same data"
    import random, numpy as np, torch
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)

def _err(exc):
    "The first line of `exc`, with its type"
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0][:160] if msg else ''}"

def work(path, mode, out, cell_timeout, mods=(), force=(), all_nbs=False, reassert=True):
    """Run the notebook at `path` cell by cell, writing each cell's verdict to `out` as it goes.
    `mode`: 'base' (as is), 'control' (the fastai modules `mods` imported first), 'plugin'"""
    os.nice(10)
    import torch
    torch.set_num_threads(1)
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    path = Path(path).resolve()
    cells = _test_cells(path, force, all_nbs)
    os.environ['IN_TEST'] = '1'
    plugin = mode == 'plugin'
    res = dict(nb=path.stem, mode=mode, cells=[], done=False, secs=0.)
    t0 = time.time()
    save = lambda: Path(out).write_text(json.dumps(res))
    k = CaptureShell(path)
    with working_directory(path.parent):
        if mode == 'control': _import_fastai(mods)
        if plugin:
            def _run():
                k.run(PLUGIN)
                if k.exc: raise k.exc
            names,attrs = _plugin_state(_run, mods)
        for c in cells:
            t1 = time.time()
            _seed()
            k.cell(c, timeout=cell_timeout)
            exc = k.exc
            if plugin and reassert and _exports(c): _reassert(k.user_ns, names, attrs)
            lines = [l for l in c.source.splitlines() if l.strip() and not l.startswith('#|')]
            first = lines[0] if lines else ''
            res['cells'].append(dict(idx=c.idx_, id=c.get('id'), first=first[:100],
                                     ok=exc is None, err=None if exc is None else _err(exc),
                                     secs=round(time.time()-t1, 2)))
            res['secs'] = round(time.time()-t0, 1)
            save()
    res['done'] = True
    save()

# ---- the driver ----

def plugin_modules():
    "The fastai modules that importing the plugin imports"
    code = ('import sys, fastai_anneal.all\n'
            'print(" ".join(m for m in sys.modules if m.startswith("fastai.")))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    return sorted(out.stdout.split())

def _key(path, *extra):
    "Cache key of the results of a run of the notebook at `path` that does not depend on the plugin"
    import fastai, torch
    h = hashlib.sha256(Path(path).read_bytes())
    h.update(' '.join([fastai.__version__, torch.__version__, str(VERSION), *extra]).encode())
    return h.hexdigest()[:16]

def run_one(path, mode, a, tmp):
    "The verdicts of the cells of the notebook at `path` in `mode`, run in a subprocess"
    out = Path(tmp)/f'{Path(path).stem}.{mode}.json'
    out.unlink(missing_ok=True)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
    cmd = [sys.executable, __file__, '--worker', str(path), '--mode', mode, '--out', str(out),
           '--cell-timeout', str(a.cell_timeout), '--mods', *a.mods]
    if a.flags: cmd += ['--flags', *a.flags]
    if a.skip_exec: cmd.append('--skip-exec')
    if a.no_reassert: cmd.append('--no-reassert')
    t0 = time.time()
    try: p = subprocess.run(cmd, env=env, timeout=a.timeout, capture_output=True, text=True)
    except subprocess.TimeoutExpired: p = None
    res = dict(nb=Path(path).stem, cells=[], done=False)
    if out.exists(): res = json.loads(out.read_text())
    res['wall'] = round(time.time()-t0, 1)
    if not res['done']:
        last = (p.stderr.strip().splitlines() or ['?'])[-1][:200] if p else 'timed out'
        res['why'] = last
    return res

def cached(path, mode, a):
    "The verdicts of `mode` ('base' or 'control'), from the cache if this notebook ran so already"
    extra = [*a.flags, str(a.skip_exec)] + (a.mods if mode == 'control' else [])
    f = Path(a.cache)/f'{Path(path).stem}.{mode}.{_key(path, *extra)}.json'
    if f.exists(): return json.loads(f.read_text())
    res = run_one(path, mode, a, a.cache)
    if res['done']: f.write_text(json.dumps(res))
    return res

def allowed(nb, cell_src):
    "The reason a failure of this cell is allowed, or None"
    return next((why for n,txt,why in ALLOWED if n == nb and txt in cell_src), None)

def _verdicts(res): return {c['idx']: c for c in res['cells']}

def compare(base, control, plug, srcs):
    """The cells that pass as they are and fail (or are not reached) with the plugin, as
    (cell, error, reason allowed or None, whether they fail in the control run too)"""
    ctl,got = _verdicts(control),_verdicts(plug)
    res = []
    for c in base['cells']:
        p = got.get(c['idx'])
        if not c['ok'] or (p is not None and p['ok']): continue
        err = p['err'] if p else f"not reached ({plug.get('why', 'stopped')})"
        order = not ctl.get(c['idx'], {}).get('ok', False)
        res.append((c, err, allowed(base['nb'], srcs.get(c['idx'], '')), order))
    return res

def _n_ok(res): return sum(c['ok'] for c in res['cells'])

def report(rows):
    "Print the failing cells; return those neither allowed nor explained by the import order"
    bad = []
    if rows: print('\ncells that pass as they are and fail with the plugin:')
    for nb,c,err,why,order in rows:
        tag = 'PLUGIN'
        if order: tag = 'fails with fastai imported first too (import order)'
        if why: tag = f'allowed: {why}'
        print(f"{nb} cell {c['idx']} ({c['id']}) [{tag}]: {c['first']}\n    {err}")
        if not why and not order: bad.append(c)
    return bad

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('dir', nargs='?', default=os.environ.get('FASTAI_NBS'))
    ap.add_argument('-n', '--nbs', nargs='*', help='notebook names (default: the selection)')
    ap.add_argument('--timeout', type=int, default=900, help='seconds per notebook and mode')
    ap.add_argument('--cell-timeout', type=int, default=300)
    ap.add_argument('--flags', nargs='*', default=[], help="test flags to run anyway (e.g. cuda)")
    ap.add_argument('--skip-exec', action='store_true', help='run notebooks marked skip_exec too')
    ap.add_argument('--no-reassert', action='store_true',
                    help="leave the notebook's own definitions in place after the plugin's import")
    ap.add_argument('--cache', default=os.environ.get('FASTAI_NBS_CACHE', '/tmp/fastai_nbs_cache'))
    ap.add_argument('--worker', help=argparse.SUPPRESS)
    ap.add_argument('--mode', help=argparse.SUPPRESS)
    ap.add_argument('--out', help=argparse.SUPPRESS)
    ap.add_argument('--mods', nargs='*', default=[], help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        return work(a.worker, a.mode, a.out, a.cell_timeout, a.mods, a.flags, a.skip_exec,
                    not a.no_reassert)
    if not a.dir or not Path(a.dir).is_dir():
        sys.exit(f'no notebook folder: give DIR or set FASTAI_NBS, got {a.dir!r}')
    Path(a.cache).mkdir(parents=True, exist_ok=True)
    a.mods = plugin_modules()
    rows, t0 = [], time.time()
    print(f"{'notebook':30} {'cells':>5} {'ok as is':>8} {'ok imports':>10} {'ok plugin':>9}"
          f" {'fail plugin':>11} {'secs':>12}")
    for p in select(a.dir, a.nbs):
        if not _test_cells(p, a.flags, a.skip_exec):
            print(f"{p.stem:30} {0:5}  (nothing to run: skip_exec, or every cell flagged)")
            continue
        srcs = {i: _src(c) for i,c in enumerate(json.loads(p.read_text())['cells'])}
        base,ctl = cached(p, 'base', a),cached(p, 'control', a)
        plug = run_one(p, 'plugin', a, a.cache)
        fails = compare(base, ctl, plug, srcs)
        why = [r.get('why') for r in (base, ctl, plug) if not r['done']]
        secs = '/'.join(f"{r.get('wall', 0):.0f}" for r in (base, ctl, plug))
        print(f"{p.stem:30} {len(base['cells']):5} {_n_ok(base):8} {_n_ok(ctl):10}"
              f" {_n_ok(plug):9} {len(fails):11} {secs:>12}" + (f'  ({why[0]})' if why else ''),
              flush=True)
        rows += [(p.stem, *f) for f in fails]
    bad = report(rows)
    print(f'\n{len(bad)} cell(s) fail only with the plugin; {time.time()-t0:.0f} s')
    if bad: sys.exit(1)

if __name__ == '__main__': main()
