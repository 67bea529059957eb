"The demo's output: plain lines in a log or CI (stdout a pipe), fastai's progress bar in a terminal"
import os, pty, re, subprocess, sys
from pathlib import Path

root = Path(__file__).parent.parent
def env(): return {**os.environ, 'MPLBACKEND': 'Agg', 'PYTHONPATH': str(root)}

def test_piped_output_is_one_line_per_epoch(tmp_path):
    r = subprocess.run([sys.executable, '-m', 'fastai_anneal', 'demo', '--epochs', '3', '--out', str(tmp_path)],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env(), cwd=tmp_path, timeout=300, check=True)
    out = r.stdout.decode()
    assert '\r' not in out and '█' not in out  # no progress-bar redraws
    lines = out.splitlines()
    assert lines[0].split() == ['epoch', 'train_loss', 'valid_loss', 'accuracy', 'time']
    assert [l.split()[0] for l in lines[1:4]] == ['0', '1', '2']
    assert all(re.fullmatch(r'\d+ +[\d.]+ +[\d.]+ +[\d.]+ +\d\d:\d\d', l) for l in lines[1:4])
    assert re.search(r'^final validation accuracy: 0\.\d{4}$', out, re.M)
    assert len(lines) == 6

def test_terminal_shows_fastais_progress_bar(tmp_path):
    main,sub = pty.openpty()
    p = subprocess.Popen([sys.executable, '-m', 'fastai_anneal', 'demo', '--epochs', '1', '--out', str(tmp_path)],
                         stdout=sub, stderr=subprocess.DEVNULL, env=env(), cwd=tmp_path)
    os.close(sub)
    out = b''
    while True:
        try: chunk = os.read(main, 65536)
        except OSError: break  # the child closed the terminal
        if not chunk: break
        out += chunk
    assert p.wait(timeout=300) == 0
    os.close(main)
    out = out.decode(errors='replace')
    assert '\r' in out and '100.00%' in out  # fastprogress redraws its bar in place
    assert 'final validation accuracy' in out
