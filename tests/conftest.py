import os
os.environ.setdefault('MPLBACKEND', 'Agg')
import warnings
warnings.filterwarnings('ignore', message='.*load_learner.*')
import fastai_oracle  # capture fastai's methods before any test imports fastai_anneal
