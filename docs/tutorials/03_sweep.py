# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A small sweep
#
# A sweep trains and evaluates a grid of cells — preset × hidden size × noise dimension × seed — each
# an ordinary run folder, and summarises them as a CSV and the paper's grid figures. The cells here
# are tiny (a few epochs of the paper's recipe) so that the page builds in a couple of minutes on a
# 2-core CPU; the numbers say nothing about emulation. [Sweeps](../sweeps.md) shows the paper's
# whole grid and how to run it on a Ray cluster.

# %%
import csv
import tempfile
from pathlib import Path

from IPython.display import Image

from hmmrnn.sweep import SweepSpec, run_sweep

workdir = Path(tempfile.mkdtemp(prefix="hmmrnn-tutorial-"))  # where this page's sweep folder goes
spec = SweepSpec(presets=("linear2", "linear3"), hidden=(16,), noise_dim=(2, 8), seeds=(0,), recipe="paper",
                 overrides={"epochs": 3, "num_seq": 600, "seq_len": 20, "batch_size": 100, "lr": 0.01},
                 eval_n=300)
[cell.name for cell in spec.cells()]

# %% [markdown]
# Two worker processes with one thread each; a second call with the same folder would skip the
# finished cells.

# %%
records = run_sweep(spec, workdir / "sweep", backend="local", workers=2, threads=1, progress=False)
[(r["cell"], r["status"], r.get("verdict")) for r in records]

# %%
with open(workdir / "sweep" / "sweep_summary.csv") as handle:
    rows = list(csv.DictReader(handle))
print(", ".join(list(rows[0])[:12]), "...")
for row in rows:
    print(row["cell"], row["status"], row["verdict"], row["matched_distance"])

# %% [markdown]
# The grid figure of one preset: matched distance against the noise dimension, with the HMM-vs-HMM
# baseline.

# %%
figures = sorted((workdir / "sweep" / "figures").glob("distance_*.png"))
Image(filename=str(figures[0]))
