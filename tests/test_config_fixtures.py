"Configs saved with `to_dict()` by an earlier version (tests/fixtures) still load and give the same values"
import json
from pathlib import Path
import numpy as np, pytest
from fastai_anneal.core import sched_from_dict
import fastai_anneal.schedules  # registers its shapes with sched_from_dict

SAVED = json.loads((Path(__file__).parent/'fixtures'/'configs_before_rework.json').read_text())

@pytest.mark.parametrize('name', sorted(SAVED))
def test_saved_config_loads_with_the_same_values(name):
    d = SAVED[name]
    s = sched_from_dict(d['config'])
    if d['n_steps']: s = s.resolve(d['n_steps'], 10)
    np.testing.assert_allclose(s(np.arange(100)/100), d['values'], rtol=1e-12, atol=0)
    assert sched_from_dict(s.to_dict())(0.37) == pytest.approx(s(0.37), rel=1e-12)

def test_unknown_type_says_where_shapes_come_from():
    with pytest.raises(ValueError, match="unknown schedule type 'nope'.*fastai_anneal.schedules"):
        sched_from_dict({'type': 'nope'})
