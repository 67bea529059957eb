"Two CPU processes (gloo) under fastai's `distrib_ctx`: every rank follows the same schedule, one value per local batch"
import json, os, socket, subprocess, sys
from pathlib import Path
import numpy as np, pytest
from fastai_anneal.all import *

pytest.importorskip('accelerate')

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def test_two_processes_same_schedule(tmp_path):
    root = Path(__file__).parent.parent
    env = {**os.environ, 'ACCELERATE_USE_CPU': 'true', 'PYTHONPATH': os.pathsep.join([str(root), os.environ.get('PYTHONPATH', '')]), 'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_addr=127.0.0.1', f'--master_port={free_port()}',
           str(root/'tests'/'distrib_script.py'), str(tmp_path)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=90)
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
