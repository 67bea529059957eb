#!/usr/bin/env python3
"""Execute every notebook in nbs/ in place, keeping the outputs (plots, tables) so that a reader browsing nbs/ sees
them, then `nbdev-clean` them. Progress bars are dropped from the stored text (a terminal overwrites them, and one
stopped mid-way, as `lr_find` stops, would stay frozen in the page), so is a metrics header no epoch row follows (a
fit refused in `before_fit`), and so is stderr (library warnings).

    python tools/run_nbs.py [NOTEBOOK ...]     # default: every nbs/*.ipynb

Runs with nbdev's own notebook runner (`nbdev-test`'s, with `save=True`): `#| eval: false` cells are skipped as
there. Not part of the package (tools/ is outside it and out of the sdist)."""
import os, re, subprocess, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent

BAR = re.compile(r'\d+(\.\d+)?% \[\d+/\d+[ \]]')  # a progress bar: `|----| 13.64% [3/22 00:00<00:01]`
ROW = re.compile(r'^\d+\s')                       # a row of fastai's metrics table starts with the epoch

def _terminal_lines(text):
    "What a terminal shows of `text`: each line only after its last carriage return, without bar glyphs"
    return [l.rsplit('\r', 1)[-1].replace('█', '') for l in text.split('\n')]

def is_header(line): return line.startswith('epoch ')

def final_text(text):
    "`text` as a reader should see it: no progress bars (finished or frozen), no metrics header without rows"
    lines = [l for l in _terminal_lines(text) if not BAR.search(l) and 'Interrupted' not in l]
    lines = [l for l in lines if l == '' or l.strip()]
    keep = []
    for i,line in enumerate(lines):
        nxt = next((l for l in lines[i+1:] if l.strip()), '')
        if is_header(line) and not ROW.match(nxt): continue  # a fit that stopped before its first epoch ended
        keep.append(line)
    return '\n'.join(keep)

def tidy_outputs(path):
    "Reduce the progress output in the stdout of the notebook at `path`, and drop stderr (library warnings)"
    import nbformat
    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:
        if 'outputs' not in c: continue
        outs = [o for o in c['outputs'] if not (o.get('output_type') == 'stream' and o.get('name') == 'stderr')]
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
    clean = Path(sys.executable).with_name('nbdev-clean')  # the venv's, also when its bin/ is not on PATH
    subprocess.run([str(clean) if clean.exists() else 'nbdev-clean'], cwd=root, check=True)
    if failed: sys.exit(f"failed: {', '.join(failed)}")

if __name__ == '__main__': main(sys.argv[1:])
