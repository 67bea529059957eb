"""fastai's loggers with our ParamScheduler: TensorBoardCallback, CSVLogger, WandbCallback (offline); the lr they log
each step is `recorder.hps['lr']`. Event files and the offline wandb run are read back from disk."""
import glob, json, os, struct, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from fastcore.basics import init_args
from fastai.test_utils import synth_learner
from fastai.callback.progress import CSVLogger
from fastai_anneal.all import *

root = Path(__file__).parent.parent

def test_csv_logger(tmp_path):
    learn = synth_learner(n_trn=20, path=tmp_path)
    learn.fit_one_cycle(3, 1e-2, cbs=CSVLogger())
    df = pd.read_csv(tmp_path/'history.csv')
    assert list(df.epoch) == [0, 1, 2] and len(learn.recorder.hps['lr']) == 3*len(learn.dls.train)

def test_tensorboard_logs_our_lr(tmp_path):
    pytest.importorskip('tensorboard')
    from fastai.callback.tensorboard import TensorBoardCallback
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    learn = synth_learner(n_trn=20)
    learn.fit_one_cycle(2, 1e-2, cbs=TensorBoardCallback(tmp_path, trace_model=False, log_preds=False))
    ea = EventAccumulator(str(tmp_path)); ea.Reload()
    for k in ('lr', 'mom'):
        events = ea.Scalars(f'{k}_0')  # fastai logs at every batch, validation ones too (at the last training step)
        assert sorted({e.step for e in events}) == list(range(1, len(learn.recorder.hps[k])+1))
        np.testing.assert_allclose([e.value for e in events], [learn.recorder.hps[k][e.step-1] for e in events], rtol=1e-6)  # float32 on disk

# wandb

def _records(path):
    "The protobuf records of an offline wandb run file (a LevelDB-style log of 32 KiB blocks after a 7-byte header)"
    from wandb.proto import wandb_internal_pb2 as pb
    data,pos,buf = open(path, 'rb').read(),7,b''
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7: pos += left; continue
        _,n,typ = struct.unpack('<IHB', data[pos:pos+7])
        if typ == 0 and n == 0: pos += left; continue
        chunk,pos = data[pos+7:pos+7+n],pos+7+n
        if typ in (1, 2): buf = chunk
        else: buf += chunk
        if typ in (1, 4):
            rec = pb.Record(); rec.ParseFromString(buf)
            yield rec

def wandb_history(run_dir):
    (path,) = glob.glob(f'{run_dir}/wandb/offline-run-*/run-*.wandb')
    return [{i.key or '/'.join(i.nested_key): json.loads(i.value_json) for i in r.history.item} for r in _records(path) if r.WhichOneof('record_type') == 'history']

def fastais_wandb_config_broken():
    "fastcore's `init_args` fails on objects without `__dict__` (numbers), which fastai's wandb config formatting reaches for any Learner"
    try: init_args(0.1)
    except TypeError: return True
    return False

def safe_init_args(o): return init_args(o) if hasattr(o, '__dict__') else {}

WANDB_FIT = """
import json, sys, wandb
import fastai.callback.wandb as fw
from fastcore.basics import init_args
from fastai.test_utils import synth_learner
from fastai_anneal.all import *
if sys.argv[1] == 'workaround': fw.init_args = lambda o: init_args(o) if hasattr(o, '__dict__') else {}  # the README's
wandb.init(project='fastai_anneal_test')
learn = synth_learner(n_trn=20)
if sys.argv[2] == 'plain':
    try: learn.fit(1, cbs=fw.WandbCallback(log_preds=False))
    except TypeError as e: print(json.dumps({'error': str(e)})); sys.exit()
    print(json.dumps({'error': None})); sys.exit()
cb = ParamScheduler({'lr': one_cycle(1e-2), 'mom': combined_cos(0.25, 0.95, 0.85, 0.95)})
learn.fit(2, cbs=[cb, fw.WandbCallback(log_preds=False)])
assert repr(cb.scheds['lr']) == repr(one_cycle(1e-2))  # the config formatting left our schedules alone
learn.fit_one_cycle(2, 1e-2, cbs=fw.WandbCallback(log_preds=False))
wandb.finish()
print(json.dumps({'cb': cb.hps, 'one_cycle': learn.recorder.hps}))
"""

def wandb_fit(tmp_path, *args):
    "Run `WANDB_FIT` offline in a fresh process (the run file is complete once it exits); its printed JSON"
    pytest.importorskip('wandb')
    env = {**os.environ, 'WANDB_MODE': 'offline', 'WANDB_DIR': str(tmp_path), 'WANDB_SILENT': 'true', 'WANDB_CONSOLE': 'off',
           'MPLBACKEND': 'Agg', 'PYTHONPATH': str(root)}
    r = subprocess.run([sys.executable, '-c', WANDB_FIT, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])

def test_fastais_wandb_callback_on_a_plain_learner(tmp_path):
    "Shows the installed fastai's own bug, with no ParamScheduler anywhere: README says so and gives the workaround"
    res = wandb_fit(tmp_path, 'as-installed', 'plain')
    if fastais_wandb_config_broken(): assert 'vars()' in res['error']
    else: assert res['error'] is None
    assert wandb_fit(tmp_path, 'workaround', 'plain')['error'] is None

def test_wandb_logs_our_lr(tmp_path):
    hps = wandb_fit(tmp_path, 'workaround', 'ours')
    rows = [r for r in wandb_history(tmp_path) if 'lr_0' in r]
    n = len(hps['cb']['lr'])
    assert len(rows) == n + len(hps['one_cycle']['lr'])
    for k in ('lr', 'mom'):
        np.testing.assert_allclose([r[f'{k}_0'] for r in rows[:n]], hps['cb'][k])
        np.testing.assert_allclose([r[f'{k}_0'] for r in rows[n:]], hps['one_cycle'][k])

def test_our_schedules_survive_wandb_config_formatting():
    "fastai's formatting rewrites in place the attributes named like `__init__` arguments; ours keep none"
    from fastai.callback.wandb import _format_config
    import fastai.callback.wandb as fw
    learn = synth_learner(n_trn=20, cbs=ParamScheduler({'lr': sched_lin(1e-3, 1e-2)}))
    cb = learn.param_scheduler
    assert init_args(cb) == {}
    cfg = {f'{c}': safe_init_args(c) or True for c in learn.cbs}
    fw_init_args = fw.init_args
    try:
        fw.init_args = safe_init_args
        _format_config(cfg)
    finally: fw.init_args = fw_init_args
    assert repr(cb.scheds) == "{'lr': sched_lin(0.001, 0.01)}"
    learn.fit(1)
