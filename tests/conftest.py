import os
os.environ.setdefault('MPLBACKEND', 'Agg')
import warnings
warnings.filterwarnings('ignore', message='.*load_learner.*')
import fastai_oracle  # capture fastai's methods before any test imports fastai_anneal

# In CI, hypothesis draws the same examples every run (no flaky red builds); locally it explores new ones.
from hypothesis import settings
settings.register_profile('ci', derandomize=True, database=None)
if os.environ.get('CI'): settings.load_profile('ci')
