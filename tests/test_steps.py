"The schedule is right however steps are counted: accumulation, skipped AMP steps, two processes"
import json, os, subprocess, sys
from pathlib import Path
import numpy as np, pytest, torch
from fastai.callback.core import Callback
from fastai.callback.fp16 import MixedPrecision
from fastai.callback.training import GradientAccumulation
from fastai.test_utils import synth_learner
from fastai_anneal.all import *

class Steps(Callback):
    "The batch, lr and mom of every optimizer step taken (not cancelled, not skipped by a scaler)"
    order = 90
    def before_fit(self): self.rows,self.cancelled = [],False
    def after_cancel_step(self): self.cancelled = True
    def after_step(self):
        h = self.opt.hypers[-1]
        if not self.cancelled: self.rows.append((self.train_iter, h['lr'], h['mom']))
        self.cancelled = False

def test_accumulation_steps_use_the_values_of_their_batch():
    "Under `GradientAccumulation`, a step uses the schedule's values at the batch it steps on"
    learn = synth_learner(n_trn=10, cbs=Steps())  # 10 batches of 16 an epoch
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(3, 1e-2, cbs=GradientAccumulation(48))
    rows,hps = learn.steps.rows,learn.recorder.hps
    n = len(hps['lr'])
    assert n == 30 and len(rows) == 10  # a step every 3 batches
    assert [i for i,_,_ in rows] == list(range(2, 30, 3))
    assert [lr for _,lr,_ in rows] == [hps['lr'][i] for i,_,_ in rows]
    assert [m for _,_,m in rows] == [hps['mom'][i] for i,_,_ in rows]
    lr = combined_cos(0.25, 1e-2/25, 1e-2, 1e-2/1e5)
    np.testing.assert_allclose([lr for _,lr,_ in rows], [lr(i/n) for i,_,_ in rows], rtol=1e-12)

def test_batch_durations_count_loader_batches_under_accumulation():
    "'Nba' counts the loader's batches (fastai's `train_iter`): N steps every k batches is N*k"
    learn = synth_learner(n_trn=10, cbs=Steps())
    n_acc,bs,N = 32,16,4
    with learn.no_bar(), learn.no_logging():
        warm = f'{N*(n_acc//bs)}ba'
        learn.fit_warmup_cos(2, 1e-2, pct_warmup=warm, cbs=GradientAccumulation(n_acc))
    lrs = learn.recorder.hps['lr']
    assert int(np.argmax(lrs)) == N*(n_acc//bs)  # the top at batch 8: after 8 batches, 4 steps
    steps = [lr for _,lr,_ in learn.steps.rows]
    assert steps[:N] == sorted(steps[:N]) and steps[N-1] < 1e-2 and steps[N] < 1e-2

class CPUScaler(MixedPrecision):
    "fastai's `MixedPrecision` with torch's CPU `GradScaler`: skips steps with non-finite gradients"
    def before_fit(self):
        super().before_fit()
        self.learn.scaler = torch.amp.GradScaler('cpu', init_scale=2.**8)

class InfGrads(Callback):
    "Put an inf in the gradients at the batches `at` (as an fp16 overflow does)"
    order = 20
    def __init__(self, at): self.at,self.skipped = set(at),[]
    def after_backward(self):
        if self.train_iter in self.at:
            next(self.model.parameters()).grad.view(-1)[0] = float('inf')
    def after_cancel_step(self): self.skipped.append(self.train_iter)

def amp_fit(at):
    learn = synth_learner(n_trn=8, cbs=[CPUScaler(), InfGrads(at), Steps()])
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(2, 1e-2)
    return learn

@pytest.mark.filterwarnings('ignore::UserWarning')
def test_skipped_amp_steps_do_not_shift_the_schedule():
    "A step the scaler skips moves no later value: the schedule follows the data, not the steps"
    clean,skip = amp_fit([]),amp_fit([3, 4, 11])
    assert skip.inf_grads.skipped == [3, 4, 11] and clean.inf_grads.skipped == []
    assert len(skip.steps.rows) == len(clean.steps.rows) - 3
    assert skip.recorder.hps == clean.recorder.hps  # every batch: the same values
    stepped = {i: (lr, m) for i,lr,m in skip.steps.rows}
    assert all(stepped[i] == (lr, m) for i,lr,m in clean.steps.rows if i in stepped)
    n = 16
    lr = combined_cos(0.25, 1e-2/25, 1e-2, 1e-2/1e5)
    np.testing.assert_allclose(skip.recorder.hps['lr'], lr(np.arange(n)/n), rtol=1e-12)

def free_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

@pytest.mark.parametrize('n_acc', [1, 2])
def test_anneal_lr_under_accelerate_two_processes(tmp_path, n_acc):
    "`AnnealLR` prepared by Accelerate in two processes follows the one-process curve, by data seen"
    pytest.importorskip('accelerate')
    root = Path(__file__).parent.parent
    env = {**os.environ, 'ACCELERATE_USE_CPU': 'true', 'OMP_NUM_THREADS': '1',
           'PYTHONPATH': os.pathsep.join([str(root), os.environ.get('PYTHONPATH', '')])}
    script = root/'tests'/'steps_accelerate_script.py'
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
           '--master_addr=127.0.0.1', f'--master_port={free_port()}', str(script), str(tmp_path),
           str(n_acc)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r0,r1 = [json.loads((tmp_path/f'rank{i}.json').read_text()) for i in range(2)]
    assert r0['world'] == 2 and r0['lrs'] == r1['lrs']
    total = r0['total']  # one process: 2 epochs of 16 batches, a step every n_acc batches
    assert total == 32//n_acc and len(r0['lrs']) == total//2
    s = combined_cos(0.25, 0.004, 0.1, 1e-6)
    one = s(np.arange(total)/total)  # the lr of each step of one process over the whole data
    np.testing.assert_allclose(r0['lrs'], one[::2], rtol=1e-12)  # a step of 2 processes: 2 of one
