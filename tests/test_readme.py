"""Every ```python block of README.md runs as written, in order, in one fresh Python process, as a
reader who pastes them one after the other runs them (in an empty directory, matplotlib's Agg)."""
import json, os, re, subprocess, sys
from pathlib import Path

root = Path(__file__).parent.parent

# Shorter runs of the same calls, so that the suite stays quick; each must still match the README.
SHORTER = {'learn.fit_budget(5.)': 'learn.fit_budget(1.)'}

RUNNER = '''import json, sys, traceback
blocks = json.load(open(sys.argv[1]))
ns = {'__name__': '__main__'}
for i,src in enumerate(blocks):
    try: exec(compile(src, f'<README block {i+1}>', 'exec'), ns)
    except BaseException:
        traceback.print_exc()
        sys.exit(f'README block {i+1} of {len(blocks)} failed:\\n{src}')
    print(f'block {i+1} ok', flush=True)
'''

def readme_blocks(text):
    "The code of every ```python block in `text`, in order"
    return re.findall(r'^```python\n(.*?)^```$', text, re.M | re.S)

def shortened(blocks):
    "`blocks` with the `SHORTER` substitutions made, each found in some block"
    out = list(blocks)
    for old,new in SHORTER.items():
        assert any(old in b for b in out), f'{old!r} is no longer in the README: update SHORTER'
        out = [b.replace(old, new) for b in out]
    return out

def test_readme_has_complete_blocks():
    blocks = readme_blocks((root/'README.md').read_text())
    assert len(blocks) >= 6
    assert all('import' in b for b in blocks[:1])  # the first block starts from nothing
    assert not any(re.search(r'^\s*(\.\.\.|…)\s*$', b, re.M) for b in blocks)  # no elided lines

def test_readme_blocks_run_in_order(tmp_path):
    blocks = shortened(readme_blocks((root/'README.md').read_text()))
    (tmp_path/'blocks.json').write_text(json.dumps(blocks))
    (tmp_path/'run.py').write_text(RUNNER)
    path = os.pathsep.join([str(root), os.environ.get('PYTHONPATH', '')])
    env = {**os.environ, 'MPLBACKEND': 'Agg', 'PYTHONPATH': path}
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'): env.pop(k, None)
    cmd = [sys.executable, str(tmp_path/'run.py'), str(tmp_path/'blocks.json')]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert r.stdout.count(' ok\n') == len(blocks)
