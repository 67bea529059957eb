"""Two CPU processes (gloo) under fastai's `distrib_ctx`: every rank follows the same schedule, one value per local
batch; the README's script runs as a user runs it and exits with status 0; a gloo group ends before Python does."""
import json, os, re, socket, subprocess, sys
from pathlib import Path
import numpy as np, pytest
from fastai_anneal.all import *

pytest.importorskip('accelerate')
root = Path(__file__).parent.parent

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def env(**kw):
    "The environment of a child process: this checkout's package first, one thread a process, no inherited rank"
    path = os.pathsep.join([str(root), os.environ.get('PYTHONPATH', '')])
    e = {**os.environ, 'PYTHONPATH': path, 'OMP_NUM_THREADS': '1', **kw}
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'ACCELERATE_USE_CPU'):
        if k not in kw: e.pop(k, None)
    return e

def launch(script, *args, timeout=180, **kw):
    "Run `script` in two processes with `torch.distributed.run`"
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_addr=127.0.0.1',
           f'--master_port={free_port()}', str(script), *map(str, args)]
    return subprocess.run(cmd, env=env(**kw), capture_output=True, text=True, timeout=timeout)

def test_two_processes_same_schedule(tmp_path):
    r = launch(root/'tests'/'distrib_script.py', tmp_path, ACCELERATE_USE_CPU='true', timeout=90)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r0,r1 = [json.loads((tmp_path/f'rank{i}.json').read_text()) for i in range(2)]
    assert r0['world'] == r1['world'] == 2
    assert r0['model'] == r1['model'] == 'DistributedDataParallel'
    assert r0['x0'] != r1['x0']  # each rank trained on its own share of the data
    n = 2*r0['n_local']
    assert r0['n_local'] == r0['n_global']//2 == 4
    assert r0['hps'] == r1['hps'] and r0['group_hps'] == r1['group_hps']
    lr = combined_cos(0.25, np.array([1e-3, 1e-2])/25, [1e-3, 1e-2], np.array([1e-3, 1e-2])/1e5)
    np.testing.assert_allclose(r0['group_hps']['lr'], lr(np.arange(n)/n), rtol=1e-10)
    np.testing.assert_allclose(r0['hps']['mom'], combined_cos(0.25, 0.95, 0.85, 0.95)(np.arange(n)/n), rtol=1e-10)

def readme_script():
    "The README's `train_ddp.py`, exactly as shown"
    blocks = re.findall(r'^```python\n(.*?)^```$', (root/'README.md').read_text(), re.M | re.S)
    script = [b for b in blocks if b.startswith('# train_ddp.py\n')]
    assert len(script) == 1, 'README.md must show one complete `train_ddp.py`'
    return script[0]

@pytest.mark.parametrize('run', range(3))
def test_readme_script_exits_cleanly(tmp_path, run):
    "The user's script, with no teardown and no `os._exit`, ends with status 0 on both ranks, and trains on both"
    (tmp_path/'train_ddp.py').write_text(readme_script())
    r = launch(tmp_path/'train_ddp.py')
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert 'terminate called' not in out
    assert re.search(r'^1\s+[\d.]+\s+[\d.]+\s+\d\d:\d\d', out, re.M)  # rank 0's table shows the second epoch

GLOO_EXIT = '''import glob, os, sys, torch
import torch.distributed as dist
from fastai_anneal.all import *

def gloo_threads(): return [n for n in (open(f).read() for f in glob.glob('/proc/self/task/*/comm')) if 'gloo' in n]
dist.init_process_group('gloo', rank=0, world_size=1)
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 1))
model(torch.randn(4, 2)).sum().backward()
del model
dist.destroy_process_group()
print(len(gloo_threads()))
'''

@pytest.mark.skipif(not Path('/proc/self/task').exists(), reason='reads the thread names from /proc (Linux)')
def test_teardown_ends_gloo_threads(tmp_path):
    "After DDP and `destroy_process_group`, no gloo thread is left for the interpreter's shutdown to tear down"
    (tmp_path/'gloo_exit.py').write_text(GLOO_EXIT)
    e = env(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port()))
    r = subprocess.run([sys.executable, str(tmp_path/'gloo_exit.py')], env=e, capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split()[-1] == '0', r.stdout
