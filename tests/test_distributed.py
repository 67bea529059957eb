"""Two CPU processes (gloo) under fastai's `distrib_ctx`: every rank follows the same schedule,
one value per local batch; the README's script runs as a user runs it and exits with status 0;
a gloo group ends before Python does."""
import json, os, re, socket, subprocess, sys
from pathlib import Path
import numpy as np, pytest
from fastai_anneal.all import *

pytest.importorskip('accelerate')
root = Path(__file__).parent.parent
RANK_VARS = 'RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'ACCELERATE_USE_CPU'

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def env(**kw):
    "A child's environment: this checkout's package first, a thread a process, no inherited rank"
    path = os.pathsep.join([str(root), os.environ.get('PYTHONPATH', '')])
    e = {k: v for k,v in os.environ.items() if k not in RANK_VARS}
    return {**e, 'PYTHONPATH': path, 'OMP_NUM_THREADS': '1', **kw}

def launch(script, *args, timeout=600, **kw):
    "Run `script` in two processes with `torch.distributed.run`"
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
           '--master_addr=127.0.0.1', f'--master_port={free_port()}', str(script), *map(str, args)]
    return subprocess.run(cmd, env=env(**kw), capture_output=True, text=True, timeout=timeout)

def test_two_processes_same_schedule(tmp_path):
    r = launch(root/'tests'/'distrib_script.py', tmp_path, ACCELERATE_USE_CPU='true')
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r0,r1 = [json.loads((tmp_path/f'rank{i}.json').read_text()) for i in range(2)]
    assert r0['world'] == r1['world'] == 2
    assert r0['model'] == r1['model'] == 'DistributedDataParallel'
    assert r0['x0'] != r1['x0']  # each rank trained on its own share of the data
    n = 2*r0['n_local']
    assert r0['n_local'] == r0['n_global']//2 == 4
    assert r0['hps'] == r1['hps'] and r0['group_hps'] == r1['group_hps']
    lrs = np.array([1e-3, 1e-2])
    lr = combined_cos(0.25, lrs/25, lrs, lrs/1e5)
    mom = combined_cos(0.25, 0.95, 0.85, 0.95)
    np.testing.assert_allclose(r0['group_hps']['lr'], lr(np.arange(n)/n), rtol=1e-10)
    np.testing.assert_allclose(r0['hps']['mom'], mom(np.arange(n)/n), rtol=1e-10)

def readme_script():
    "The README's `train_ddp.py`, exactly as shown"
    blocks = re.findall(r'^```python\n(.*?)^```$', (root/'README.md').read_text(), re.M | re.S)
    script = [b for b in blocks if b.startswith('# train_ddp.py\n')]
    assert len(script) == 1, 'README.md must show one complete `train_ddp.py`'
    return script[0]

@pytest.mark.parametrize('run', range(3))
def test_readme_script_exits_cleanly(tmp_path, run):
    "The user's script, with no teardown and no `os._exit`, ends with status 0 on both ranks"
    (tmp_path/'train_ddp.py').write_text(readme_script())
    r = launch(tmp_path/'train_ddp.py')
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert 'terminate called' not in out
    assert re.search(r'^1\s+[\d.]+\s+[\d.]+\s+\d\d:\d\d', out, re.M)  # rank 0's table: epoch 2

GLOO_EXIT = '''import glob, os, sys, torch
import torch.distributed as dist
from fastai_anneal.all import *

def gloo_threads():
    names = (open(f).read() for f in glob.glob('/proc/self/task/*/comm'))
    return [n for n in names if 'gloo' in n]

dist.init_process_group('gloo', rank=0, world_size=1)
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 1))
model(torch.randn(4, 2)).sum().backward()
del model
dist.destroy_process_group()
print(len(gloo_threads()))
'''

@pytest.mark.skipif(not Path('/proc/self/task').exists(), reason='reads thread names from /proc')
def test_teardown_ends_gloo_threads(tmp_path):
    "After DDP and `destroy_process_group`, no gloo thread is left for Python's shutdown to end"
    (tmp_path/'gloo_exit.py').write_text(GLOO_EXIT)
    e = env(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port()))
    cmd = [sys.executable, str(tmp_path/'gloo_exit.py')]
    r = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split()[-1] == '0', r.stdout
