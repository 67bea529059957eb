"Importing the demo module leaves fastai as it is; running the demo turns the plugin on (in a fresh process each)"
import subprocess, sys

FASTAI = "from fastai.learner import Learner; import fastai.callback.schedule; "
def patched(yes):
    return f"assert (Learner.fit_one_cycle.__module__ == 'fastai_anneal.learner') is {yes}, Learner.fit_one_cycle.__module__; "

def run(code): subprocess.run([sys.executable, '-c', code], check=True, timeout=300)

def test_importing_the_demo_patches_nothing():
    for imports in ("import fastai_anneal.demo", "from fastai_anneal.demo import *", "import fastai_anneal.__main__"):
        run(f"{imports}; {FASTAI}{patched(False)}")

def test_running_the_demo_turns_the_plugin_on(tmp_path):
    run(f"import fastai_anneal.demo as d; {FASTAI}{patched(False)}"
        f"learn = d.demo(out={str(tmp_path)!r}, epochs=1, bar=False); {patched(True)}"
        "assert len(learn.recorder.hps['lr']) == len(learn.dls.train)")
