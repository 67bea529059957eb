"What PyPI gets: the licence, an sdist without tests that cannot run outside the repository, pictures that render, a version"
import os, re, shutil, subprocess, sys, tarfile
from pathlib import Path
import pytest
import fastai_anneal

root = Path(__file__).parent.parent
readme = (root/'README.md').read_text()

def test_license_is_apache2():
    text = (root/'LICENSE').read_text()
    assert 'Apache License' in text and 'Version 2.0, January 2004' in text and 'END OF TERMS AND CONDITIONS' in text

def test_readme_images_by_absolute_url():
    "PyPI shows the README without the repository: every picture is an absolute URL to a file that exists here"
    urls = re.findall(r'!\[[^\]]*\]\(([^)]+)\)', readme)
    assert urls
    base = 'https://raw.githubusercontent.com/fastai-anneal/fastai_anneal/main/'
    for u in urls:
        assert u.startswith(base), u
        assert (root/u[len(base):]).exists(), u

def test_version_command():
    exe = Path(sys.executable).parent/'fastai-anneal'
    cmd = [str(exe)] if exe.exists() else [sys.executable, '-m', 'fastai_anneal']
    r = subprocess.run(cmd + ['--version'], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == f'fastai-anneal {fastai_anneal.__version__}'

@pytest.fixture(scope='module')
def sdist(tmp_path_factory):
    "Build the sdist from a copy of the repository's tracked files (the build writes egg-info next to the sources)"
    tmp = tmp_path_factory.mktemp('sdist')
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=root, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if (root/f).is_file():
            (tmp/'src'/f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root/f, tmp/'src'/f)
    subprocess.run([sys.executable, '-m', 'build', '--sdist', '--no-isolation', '--outdir', str(tmp/'dist')], cwd=tmp/'src',
                   check=True, capture_output=True)
    (path,) = (tmp/'dist').glob('*.tar.gz')
    with tarfile.open(path) as t: return [n.split('/', 1)[1] for n in t.getnames() if '/' in n]

def test_sdist_is_the_package_and_its_licence(sdist):
    assert 'LICENSE' in sdist and 'README.md' in sdist and 'pyproject.toml' in sdist
    assert 'fastai_anneal/core.py' in sdist and 'fastai_anneal/all.py' in sdist
    assert not [n for n in sdist if n.split('/')[0] in ('tests', 'nbs', 'tools', 'benchmarks', '.ci', '.github')]
