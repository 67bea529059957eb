"""The notebooks are the documentation: each renders to HTML with its stored pictures; README.md is
made from nbs/index.ipynb, each picture drawn by the code above it; the prose speaks to users;
stored outputs show no frozen progress bars or empty tables; and building the docs (nbdev-docs,
nbdev-preview) leaves the repository as it was."""
import os, re, shutil, subprocess, sys
from pathlib import Path
import nbformat, pytest

root = Path(__file__).parent.parent
sys.path.insert(0, str(root/'tools'))
from make_readme import readme_from_index

notebooks = sorted((root/'nbs').glob('*.ipynb'))
PLOT_CALL = re.compile(r'(\.plot_sched|plot_scheds|\.preview|\.plot_lr_find|plot_training)'
                       r'\((?![^\n]*return_fig=True)[^\n]*\)\s*;?\s*$')
NO_EVAL = re.compile(r'^#\|\s*eval:\s*false', re.M)

def code_cells(nb):
    "Code cells that run when the notebook is executed (not `#| eval: false`)"
    return [c for c in nb.cells if c.cell_type == 'code' and not NO_EVAL.search(c.source)]

def n_images(cell): return sum('image/png' in o.get('data', {}) for o in cell.get('outputs', []))

def test_index_is_the_home_page():
    assert (root/'nbs'/'index.ipynb').exists()
    first = nbformat.read(root/'nbs'/'index.ipynb', as_version=4).cells[0].source
    assert first.startswith('# fastai_anneal\n\n> ')

def test_readme_is_made_from_index():
    stale = 'README.md is stale: run `python tools/make_readme.py`'
    assert (root/'README.md').read_text() == readme_from_index(), stale

@pytest.mark.parametrize('path', notebooks, ids=lambda p: p.name)
def test_notebook_renders_to_html_with_its_pictures(path):
    from nbconvert import HTMLExporter
    nb = nbformat.read(path, as_version=4)
    body,_ = HTMLExporter().from_notebook_node(nb)
    title = nb.cells[0].source.splitlines()[0].lstrip('# ')
    assert title and title.replace('`', '') in re.sub(r'<[^>]+>', '', body).replace('`', '')
    imgs = len(re.findall(r'<img[^>]+src="data:image/png;base64,', body))
    assert imgs == sum(n_images(c) for c in nb.cells)
    plotting = [c for c in code_cells(nb) if PLOT_CALL.search(c.source.strip())]
    for c in plotting:
        msg = f'{path.name} cell {c.id}: a plotting call shows one picture, got {n_images(c)}'
        assert n_images(c) == 1, msg + ' (run tools/run_nbs.py)'

def test_the_plotting_notebooks_hold_pictures():
    "The notebooks a reader opens for pictures have them stored"
    for name in ('00_core', '01_schedules', '04_learner', '07_gallery', 'index'):
        nb = nbformat.read(root/'nbs'/f'{name}.ipynb', as_version=4)
        msg = f'{name}.ipynb has no stored pictures: run tools/run_nbs.py'
        assert sum(map(n_images, nb.cells)) > 0, msg

def test_building_the_docs_leaves_git_status_clean(tmp_path):
    "What nbdev-docs/nbdev-preview do in the repository before quarto renders (in _proc/, _docs/)"
    run = lambda *a, **kw: subprocess.run(*a, capture_output=True, text=True, check=True, **kw)
    files = run(['git', 'ls-files'], cwd=root).stdout.split()
    repo = tmp_path/'repo'
    for f in files:
        if not (root/f).is_file(): continue
        (repo/f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root/f, repo/f)
    git = lambda *a: run(['git', '-c', 'user.name=t', '-c', 'user.email=t@t', *a], cwd=repo).stdout
    git('init', '-q')
    git('add', '-A')
    git('commit', '-qm', 'snapshot')
    code = "import nbdev.quarto as q; q._ensure_quarto = lambda: None; q._pre_docs(n_workers=0)"
    run([sys.executable, '-c', code], cwd=repo, env={**os.environ, 'PYTHONPATH': str(repo)})
    assert (repo/'_proc').exists()  # the docs were processed
    assert git('status', '--porcelain') == ''

def test_standard_nbdev_workflows():
    wf = root/'.github'/'workflows'
    assert 'uses: fastai/workflows/nbdev-ci@' in (wf/'test.yaml').read_text()
    assert 'uses: fastai/workflows/quarto-ghp@' in (wf/'deploy.yaml').read_text()

# Words about how the project is run, not about the library: a reader has no use for them.
ORG_WORDS = re.compile(r"\bissues? #?\d+|\bsessions?\b|\blent\b|\bseed tutorial|\bhelpers?\b"
                       r"|\bthe bar of\b|\bthis project's\b", re.I)

def test_readme_speaks_to_users():
    found = [m.group(0) for m in ORG_WORDS.finditer((root/'README.md').read_text())]
    assert not found, f'README.md (from nbs/index.ipynb) talks about the project: {found}'

def test_notebook_prose_speaks_to_users():
    found = []
    for path in notebooks:
        for c in nbformat.read(path, as_version=4).cells:
            if c.cell_type != 'markdown': continue
            words = [m.group(0) for m in ORG_WORDS.finditer(c.source)]
            found += [f'{path.name} cell {c.id}: {w!r}' for w in words]
    assert not found, found

def test_org_words_catch_what_they_should():
    for s in ('the bar of issue 12', 'No GPU was lent', "the seed tutorial's", 'a helper'):
        assert ORG_WORDS.search(s), s
    for s in ('the progress bar of fastai', 'a lenient check', 'issues of the API', 'OneCycleLR'):
        assert not ORG_WORDS.search(s), s

PROGRESS = re.compile(r'(\d+(\.\d+)?)% \[(\d+)/(\d+)')  # `|----| 13.64% [3/22 00:00<00:01]`

def stream_faults(text):
    "Progress bars (frozen or not), 'Interrupted' and metrics headers no epoch row follows"
    lines = [l.rsplit('\r', 1)[-1] for l in text.split('\n')]
    faults = [f'bar {l.strip()!r}' for l in lines if PROGRESS.search(l) or 'Interrupted' in l]
    rows = [l for l in lines if l.strip()]
    for i,line in enumerate(rows):
        nxt = rows[i+1] if i+1 < len(rows) else ''
        if line.startswith('epoch ') and not re.match(r'\d+\s', nxt):
            faults.append(f'empty table {line.strip()!r}')
    return faults

def streams(path):
    "(cell id, text) of each stream output stored in the notebook at `path`"
    cells = nbformat.read(path, as_version=4).cells
    return [(c.id, o['text']) for c in cells for o in c.get('outputs', [])
            if o.get('output_type') == 'stream']

@pytest.mark.parametrize('path', notebooks, ids=lambda p: p.name)
def test_stored_outputs_show_no_frozen_bars_or_empty_tables(path):
    faults = [f'cell {id}: {f}' for id,text in streams(path) for f in stream_faults(text)]
    assert not faults, f'{path.name}: {faults} (run tools/run_nbs.py)'

def test_run_nbs_keeps_what_a_reader_needs():
    from run_nbs import final_text
    header = 'epoch     train_loss  valid_loss  time    '
    row = '0         12.1   10.3   00:00     '
    stop = 'No improvement since epoch 1: early stopping'
    raw = (f'{header}\n\rEpoch 1/2 : |----| 0.00% [0/4 00:00<?]'
           f'\rEpoch 1/2 : |████| 100.00% [4/4 00:00<00:00]\rEpoch 1/2 :        \r{row}\n'
           f'{header}\n'                                                    # a fit refused at once
           f'{header}\n\rEpoch 5/5 : |-----| 13.64% [3/22 00:00<00:00... 5.7632]\n'  # lr_find stops
           f'{stop}\n')
    text = final_text(raw)
    assert text == f'{header}\n{row}\n{stop}\n'
    assert stream_faults(raw) and not stream_faults(text)

def test_readme_pictures_are_drawn_by_the_code_above():
    "Each picture of the index but the demo's is written by the hidden cell right above it"
    cells = nbformat.read(root/'nbs'/'index.ipynb', as_version=4).cells
    for i,c in enumerate(cells):
        if c.cell_type != 'markdown': continue
        for name in re.findall(r'!\[[^\]]*\]\(images/([^)]+)\)', c.source):
            if name == 'demo.png': continue  # `fastai-anneal demo` writes it
            above = cells[i-1]
            assert above.cell_type == 'code' and above.source.startswith('#| hide'), name
            assert f"'{name}'" in above.source, f'{name} is not drawn by the cell above it'
            assert (root/'nbs'/'images'/name).exists(), name
