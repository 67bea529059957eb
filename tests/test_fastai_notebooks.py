"fastai's own notebooks (its test suite) run with the plugin turned on: tools/run_fastai_nbs.py"
import json, os, subprocess, sys
from pathlib import Path
import pytest

root = Path(__file__).resolve().parent.parent
tool = root/'tools'/'run_fastai_nbs.py'
sys.path.insert(0, str(root/'tools'))
import run_fastai_nbs as rf

def _cell(src, cell_id):
    return dict(cell_type='code', id=cell_id, metadata={}, outputs=[], execution_count=None,
                source=src)

def _run(args, cache, **env):
    "Run the tool in a subprocess, with the worktree's package first on the path"
    env = {**os.environ, 'PYTHONPATH': str(root), 'FASTAI_NBS_CACHE': str(cache), **env}
    return subprocess.run([sys.executable, str(tool), *args], capture_output=True, text=True,
                          env=env, cwd=root)

def test_finds_cells_that_fail_only_with_the_plugin(tmp_path):
    "A toy notebook: cells failing in both runs, skipped cells and passing cells are not reported"
    # a1: checks fastai's module, a6 and a8: the plugin's objects are back after an export cell
    nbs = tmp_path/'nbs'
    nbs.mkdir()
    cells = [_cell('from fastai.basics import *', 'a0'),
             _cell('import fastai.callback.schedule as fs\n'
                   "assert fs.ParamScheduler.__module__ == 'fastai.callback.schedule'", 'a1'),
             _cell("raise ValueError('fails in both runs')", 'a2'),
             _cell("#| slow\nraise ValueError('skipped like nbdev-test')", 'a3'),
             _cell("#| eval: false\nraise ValueError('skipped like nbdev-test')", 'a4'),
             _cell('#| export\nclass ParamScheduler: pass', 'a5'),
             _cell("assert ParamScheduler.__module__ != 'fastai_anneal.callback'", 'a6'),
             _cell("#| export\nLearner.fit_one_cycle = lambda self: 'theirs'", 'a7'),
             _cell("assert Learner.fit_one_cycle(None) == 'theirs'", 'a8'),
             _cell("Learner.lr_find = lambda self: 'a mock'", 'a9'),
             _cell("assert Learner.lr_find(None) == 'a mock'", 'b0')]
    nb = dict(cells=cells, metadata={}, nbformat=4, nbformat_minor=5)
    (nbs/'toy.ipynb').write_text(json.dumps(nb))
    p = _run([str(nbs), '-n', 'toy'], tmp_path/'cache')
    assert p.returncode == 1, p.stdout + p.stderr
    table = p.stdout.splitlines()[1].split()
    assert table[:6] == ['toy', '9', '8', '8', '5', '3'], p.stdout  # run, ok as is/imports/plugin
    assert '(a1) [PLUGIN]' in p.stdout and '(a6) [PLUGIN]' in p.stdout, p.stdout
    assert '(a2)' not in p.stdout and '(a3)' not in p.stdout, p.stdout
    assert '(a8) [PLUGIN]' in p.stdout, p.stdout  # put back after an export cell
    assert '(b0)' not in p.stdout, p.stdout  # a test cell may mock a method the plugin patches
    assert '3 cell(s) fail only with the plugin' in p.stdout, p.stdout
    assert len(list((tmp_path/'cache').glob('toy.base.*.json'))) == 1  # cached

def test_compare_allowlist_and_import_order(monkeypatch):
    "A failure in the allowlist, or one that fastai's modules imported first cause, is not counted"
    def cell(i, ok): return dict(idx=i, id=f'c{i}', first='', ok=ok, err=None if ok else 'E: x')
    base = dict(nb='nb', cells=[cell(0, True), cell(1, True), cell(2, True), cell(3, False)])
    ctl = dict(nb='nb', cells=[cell(0, True), cell(1, False), cell(2, True), cell(3, False)])
    plug = dict(nb='nb', cells=[cell(0, False), cell(1, False)], why='timed out')
    monkeypatch.setattr(rf, 'ALLOWED', [('nb', '_Annealer', 'private')])
    rows = rf.compare(base, ctl, plug, {0: 'test_eq(type(f), _Annealer)'})
    assert [(c['idx'], err, why, order) for c,err,why,order in rows] == [
        (0, 'E: x', 'private', False), (1, 'E: x', None, True),
        (2, 'not reached (timed out)', None, False)]
    assert [c['idx'] for c in rf.report([('nb', *r) for r in rows])] == [2]

def test_selection(tmp_path):
    "The core notebooks, and every notebook whose code calls a method the plugin replaces"
    for name,src in [('14_callback.schedule', 'x = 1'), ('50_other', 'learn.fine_tune(1)'),
                     ('51_doc', 'y = 2')]:
        nb = dict(cells=[_cell(src, 'b0')], metadata={}, nbformat=4, nbformat_minor=5)
        (tmp_path/f'{name}.ipynb').write_text(json.dumps(nb))
    assert [p.stem for p in rf.select(tmp_path)] == ['14_callback.schedule', '50_other']

NO_NBS = ("FASTAI_NBS is not set: it names a folder of fastai's notebooks (nbs/ of a fastai "
          "checkout matching the installed fastai), which CI, without network, does not have")

@pytest.mark.skipif(not os.environ.get('FASTAI_NBS'), reason=NO_NBS)
def test_fastai_notebooks_pass_with_the_plugin():
    "Every cell of fastai's notebooks that passes as it is passes with the plugin (or is allowed)"
    names = os.environ.get('FASTAI_NBS_NAMES', '14_callback.schedule 17_callback.tracker').split()
    cache = os.environ.get('FASTAI_NBS_CACHE', '/tmp/fastai_nbs_cache')
    p = _run(['-n', *names, '--flags', 'slow'], cache)  # 14's slow cells test LRFinder, resuming
    assert p.returncode == 0, p.stdout + p.stderr
