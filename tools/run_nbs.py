#!/usr/bin/env python3
"""Execute every notebook in nbs/ in place, keeping the outputs (plots, tables) so that a reader browsing nbs/ sees
them, then `nbdev-clean` them. Progress bars written for a terminal are reduced to what a terminal would finally show,
and stderr (library warnings) is dropped.

    python tools/run_nbs.py [NOTEBOOK ...]     # default: every nbs/*.ipynb

Runs with nbdev's own notebook runner (`nbdev-test`'s, with `save=True`): `#| eval: false` cells are skipped as
there. Not part of the package (tools/ is outside it and out of the sdist)."""
import os, re, subprocess, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent

def _final_text(text):
    "What a terminal shows of `text`: each line only after its last carriage return, without progress-bar glyphs"
    lines = [l.rsplit('\r', 1)[-1] for l in text.split('\n')]
    return '\n'.join(l.replace('█', '') for l in lines if l.strip(' █') or l == '')

def tidy_outputs(path):
    "Reduce the progress-bar redraws in the stdout of the notebook at `path`, and drop stderr (library warnings)"
    import nbformat
    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:
        if 'outputs' not in c: continue
        c['outputs'] = [o for o in c['outputs'] if not (o.get('output_type') == 'stream' and o.get('name') == 'stderr')]
        for o in c['outputs']:
            if o.get('output_type') == 'stream': o['text'] = _final_text(o['text'])
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
    subprocess.run(['nbdev-clean'], cwd=root, check=True)
    if failed: sys.exit(f"failed: {', '.join(failed)}")

if __name__ == '__main__': main(sys.argv[1:])
