"The README's commands are the ones CI runs"
import re
from pathlib import Path

root = Path(__file__).parent.parent
readme = (root/'README.md').read_text()
ci = (root/'.ci'/'run').read_text()

def commands(section):
    "The code block under the README heading starting with `section`"
    m = re.search(rf'^## {re.escape(section)}.*?\n```(?:bash|sh)?\n(.*?)\n```', readme, re.S | re.M)
    assert m, f'no code block under "## {section}" in README.md'
    return m.group(1).strip()

def test_ci_runs_the_readme_test_command():
    cmd = commands('Run every test')
    assert cmd.count('\n') == 0, 'the test command is one line'
    assert ci.strip().splitlines()[-1].strip() == cmd

def test_ci_installs_as_the_readme_says():
    setup = commands('Set up and run the demo')
    assert setup == 'python3 -m venv .venv && .venv/bin/pip install -e ".[dev]" && .venv/bin/fastai-anneal demo'
    install = re.search(r'\.venv/bin/pip install (.*?) &&', setup).group(1)
    assert 'torch' not in install, 'pip resolves torch as for any fastai user: no pin in the set-up command'
    assert f'.venv/bin/pip install -q {install}' in ci
    assert 'python3 -m venv' in setup and 'python3 -m venv --clear .venv' in ci

def test_ci_checks_fastais_imports_beside_the_plugin():
    check = next(l for l in ci.splitlines() if l.startswith('.venv/bin/python -c'))
    for imp in ('from fastai.vision.all import *', 'import torchvision', 'from fastai_anneal.all import *'): assert imp in check
    assert ci.index('pip install') < ci.index(check) < ci.index('nbdev-export')

def test_readme_says_what_the_tests_ran_on_and_how_to_turn_the_plugin_on():
    assert 'torch 2.14.1' in readme and 'fastai 2.8.12' in readme and 'Python 3.11' in readme
    assert 'from fastai_anneal.all import *' in readme and 'changes nothing in fastai' in readme

def test_readme_usage_runs():
    "The first three Python examples of the README run as written (tests/test_readme.py runs them all)"
    blocks = re.findall(r'```python\n(.*?)```', readme, re.S)
    ns = {}
    for b in blocks[:3]: exec(b, ns)
    assert ns['learn'].recorder.hps['lr'] and ns['s2'].to_dict() == ns['s'].to_dict()
