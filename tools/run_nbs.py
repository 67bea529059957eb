#!/usr/bin/env python3
"""Execute notebooks in nbs/ in place, keeping their outputs (plots, tables), then `nbdev-clean`.

Progress bars are dropped from the stored text (a terminal overwrites them; one stopped mid-way,
as `lr_find` stops, would stay frozen in the page), and so are metrics headers no epoch row
follows (a fit refused in `before_fit`) and stderr (library warnings).

    python tools/run_nbs.py [NOTEBOOK ...]     # default: every nbs/*.ipynb

Runs with nbdev's own notebook runner (`nbdev-test`'s, with `save=True`): `#| eval: false` cells are
skipped as there. Not part of the package (tools/ is outside it and out of the sdist)."""
import os, re, subprocess, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent

BAR = re.compile(r'\d+(\.\d+)?% \[\d+/\d+[ \]]')  # a bar: `|----| 13.64% [3/22 00:00<00:01]`
ROW = re.compile(r'^\d+\s')                       # a row of the metrics table: its epoch first

def _terminal_lines(text):
    "What a terminal shows of `text`: each line after its last carriage return, without bar glyphs"
    return [l.rsplit('\r', 1)[-1].replace('█', '') for l in text.split('\n')]

def is_header(line): return line.startswith('epoch ')

def final_text(text):
    "`text` as a reader should see it: no progress bars (done or frozen), no header without rows"
    lines = [l for l in _terminal_lines(text) if not BAR.search(l) and 'Interrupted' not in l]
    lines = [l for l in lines if l == '' or l.strip()]
    keep = []
    for i,line in enumerate(lines):
        nxt = next((l for l in lines[i+1:] if l.strip()), '')
        if is_header(line) and not ROW.match(nxt): continue  # a fit stopped before one epoch ended
        keep.append(line)
    return '\n'.join(keep)

def _is_stderr(o): return o.get('output_type') == 'stream' and o.get('name') == 'stderr'

def tidy_outputs(path):
    "Reduce the progress output in the stdout of the notebook at `path`, and drop stderr"
    import nbformat
    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:
        if 'outputs' not in c: continue
        outs = [o for o in c['outputs'] if not _is_stderr(o)]
        for o in outs:
            if o.get('output_type') == 'stream': o['text'] = final_text(o['text'])
        c['outputs'] = [o for o in outs if o.get('output_type') != 'stream' or o['text'].strip()]
    nbformat.write(nb, path)

def main(paths):
    os.environ.setdefault('MPLBACKEND', 'module://matplotlib_inline.backend_inline')
    from nbdev.test import test_nb
    paths = [Path(p).resolve() for p in paths] or sorted((root/'nbs').glob('*.ipynb'))
    failed = []
    for p in paths:
        ok,secs = test_nb(p, save=True, basepath=root)
        print(f"{'ok' if ok else 'FAILED'} {p.name} ({secs:.0f} s)", flush=True)
        if ok: tidy_outputs(p)
        else: failed.append(p.name)
    clean = Path(sys.executable).with_name('nbdev-clean')  # the venv's, if bin/ is not on PATH
    subprocess.run([str(clean) if clean.exists() else 'nbdev-clean'], cwd=root, check=True)
    if failed: sys.exit(f"failed: {', '.join(failed)}")

if __name__ == '__main__': main(sys.argv[1:])
