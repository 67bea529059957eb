"""The notebooks are the documentation: each renders to HTML with its stored pictures, README.md is made from
nbs/index.ipynb, and building the docs (nbdev-docs, nbdev-preview) leaves the repository as it was."""
import re, shutil, subprocess, sys
from pathlib import Path
import nbformat, pytest

root = Path(__file__).parent.parent
sys.path.insert(0, str(root/'tools'))
from make_readme import readme_from_index

notebooks = sorted((root/'nbs').glob('*.ipynb'))
PLOT_CALL = re.compile(r'(\.plot_sched|plot_scheds|\.preview|\.plot_lr_find|plot_training)\((?![^\n]*return_fig=True)[^\n]*\)\s*;?\s*$')

def code_cells(nb):
    "Code cells that run when the notebook is executed (not `#| eval: false`)"
    return [c for c in nb.cells if c.cell_type == 'code' and not re.search(r'^#\|\s*eval:\s*false', c.source, re.M)]

def n_images(cell): return sum('image/png' in o.get('data', {}) for o in cell.get('outputs', []))

def test_index_is_the_home_page():
    assert (root/'nbs'/'index.ipynb').exists()
    assert nbformat.read(root/'nbs'/'index.ipynb', as_version=4).cells[0].source.startswith('# fastai_anneal\n\n> ')

def test_readme_is_made_from_index():
    assert (root/'README.md').read_text() == readme_from_index(), 'README.md is stale: run `python tools/make_readme.py`'

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
    for c in plotting: assert n_images(c) == 1, f'{path.name} cell {c.id}: a plotting call shows one picture, got {n_images(c)} (run tools/run_nbs.py)'

def test_the_plotting_notebooks_hold_pictures():
    "The notebooks a reader opens for pictures have them stored"
    for name in ('00_core', '01_schedules', '04_learner', '07_gallery', 'index'):
        nb = nbformat.read(root/'nbs'/f'{name}.ipynb', as_version=4)
        assert sum(map(n_images, nb.cells)) > 0, f'{name}.ipynb has no stored pictures: run tools/run_nbs.py'

def test_building_the_docs_leaves_git_status_clean(tmp_path):
    "Everything nbdev-docs/nbdev-preview do in the repository before quarto renders (quarto writes in _proc/, _docs/)"
    files = subprocess.run(['git', 'ls-files'], cwd=root, capture_output=True, text=True, check=True).stdout.split()
    repo = tmp_path/'repo'
    for f in files:
        if (root/f).is_file(): (repo/f).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(root/f, repo/f)
    git = lambda *a: subprocess.run(['git', '-c', 'user.name=t', '-c', 'user.email=t@t', *a], cwd=repo, capture_output=True, text=True, check=True).stdout
    git('init', '-q'); git('add', '-A'); git('commit', '-qm', 'snapshot')
    code = "import nbdev.quarto as q; q._ensure_quarto = lambda: None; q._pre_docs(n_workers=0)"
    subprocess.run([sys.executable, '-c', code], cwd=repo, check=True, capture_output=True, env={**__import__('os').environ, 'PYTHONPATH': str(repo)})
    assert (repo/'_proc').exists()  # the docs were processed
    assert git('status', '--porcelain') == ''

def test_standard_nbdev_workflows():
    wf = root/'.github'/'workflows'
    assert 'uses: fastai/workflows/nbdev-ci@' in (wf/'test.yaml').read_text()
    assert 'uses: fastai/workflows/quarto-ghp@' in (wf/'deploy.yaml').read_text()
