"pyproject.toml (the source of truth) and settings.ini (for nbdev-2-era tools) must agree"
import configparser, tomllib
from pathlib import Path
import fastai_anneal

root = Path(__file__).parent.parent
proj = tomllib.loads((root/'pyproject.toml').read_text())
ini = configparser.ConfigParser(); ini.read(root/'settings.ini')
s = ini['DEFAULT']
p,nb = proj['project'],proj['tool']['nbdev']

def test_names():
    assert s['lib_name'] == s['repo'] == p['name']
    assert s['lib_path'] == nb['lib_path']

def test_metadata():
    assert s['description'] == p['description']
    assert s['keywords'].split() == p['keywords']
    assert s['author'] == p['authors'][0]['name'] and s['author_email'] == p['authors'][0]['email']
    assert p['requires-python'] == f">={s['min_python']}"
    assert s['git_url'] == p['urls']['Repository']
    assert p['license'] == 'Apache-2.0' and s['license'] == 'apache2'

def test_version():
    assert s['version'] == fastai_anneal.__version__

def test_requirements():
    assert s['requirements'].split() == p['dependencies']
    assert s['dev_requirements'].split() == p['optional-dependencies']['dev']
    k,v = s['console_scripts'].split('=', 1)
    assert p['scripts'] == {k: v}

def test_nbdev_paths():
    for k in 'nbs_path', 'doc_path', 'readme_nb', 'tst_flags':
        assert s[k] == str(nb[k]), k
    assert ini.getboolean('DEFAULT', 'jupyter_hooks') == nb['jupyter_hooks']
