#!/usr/bin/env python3
"""Write README.md from nbs/index.ipynb, the docs' home page (`nbdev-readme` needs quarto).

Markdown cells are copied as they are; code cells become ```python blocks, without `#|`
directives and outputs; `#| hide` cells (they write the pictures) are left out. Pictures, relative
to nbs/ in the notebook, become absolute URLs so that they render on PyPI too.
`python tools/make_readme.py` rewrites README.md; tests/test_docs.py checks that it is up to date,
tests/test_readme.py runs its code."""
import json, re
from pathlib import Path

root = Path(__file__).resolve().parent.parent
IMG_BASE = 'https://raw.githubusercontent.com/fastai-anneal/fastai_anneal/main/nbs/'
IMG = re.compile(r'(!\[[^\]]*\]\()(?!https?://)([^)]+\))')

def _src(cell):
    return cell['source'] if isinstance(cell['source'], str) else ''.join(cell['source'])

def _code(src):
    lines = [l for l in src.splitlines() if not l.startswith('#|')]
    return '```python\n' + '\n'.join(lines).strip('\n') + '\n```'

def _hidden(cell):
    return cell['cell_type'] == 'code' and re.search(r'^#\|\s*hide\s*$', _src(cell), re.M)

def _part(cell):
    return _src(cell).strip('\n') if cell['cell_type'] == 'markdown' else _code(_src(cell))

def readme_from_index(path=root/'nbs'/'index.ipynb'):
    "The text of README.md made from the notebook at `path`"
    cells = json.loads(Path(path).read_text())['cells']
    parts = [_part(c) for c in cells if c['cell_type'] in ('markdown', 'code') and not _hidden(c)]
    text = '\n\n'.join(p for p in parts if p) + '\n'
    return IMG.sub(lambda m: m.group(1) + IMG_BASE + m.group(2), text)

if __name__ == '__main__': (root/'README.md').write_text(readme_from_index())
