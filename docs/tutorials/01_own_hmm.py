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
# # Your own HMM, trained and judged
#
# Define an HMM, train a noise-driven RNN on it, and ask whether the network emulates it. The sizes
# here are small so that the page builds in about a minute on a 2-core CPU; a real model uses the
# defaults (H = 150 hidden units, d = 100 noise inputs, thousands of sequences), which take minutes
# to an hour (BENCHMARKS.md, "Time to emulation").

# %%
import tempfile
from pathlib import Path

import numpy as np

import hmmrnn

workdir = Path(tempfile.mkdtemp(prefix="hmmrnn-tutorial-"))  # where this page's run folder goes

# %% [markdown]
# ## An HMM of your own
#
# Two hidden states that stay put with probability 0.9, each emitting its own symbol 95 % of the
# time and a shared third symbol otherwise. Rows of both matrices sum to 1; `HMM` checks that and
# every other property it needs, with an error that names the problem.

# %%
hmm = hmmrnn.HMM(transition=np.array([[0.9, 0.1], [0.1, 0.9]]),
                 emission=np.array([[0.95, 0.0, 0.05], [0.0, 0.95, 0.05]]),
                 name="two_wells")
symbols, states = hmm.sample(n=4, length=20, seed=0)
symbols

# %% [markdown]
# The same HMM can come from a JSON or TOML file (`hmmrnn.HMM.from_file`), which is what
# `hmmrnn train --hmm FILE` reads.

# %%
try:
    hmmrnn.HMM(transition=np.array([[0.9, 0.2], [0.1, 0.9]]), emission=np.eye(2))
except hmmrnn.HMMSpecError as error:
    print("refused:", error)

# %% [markdown]
# ## Training
#
# `hmmrnn.train` takes a preset for its training settings and `hmm=` to replace the preset's HMM. The
# default recipe (`fast`) adds penalties on the pooled bigram frequencies and on the growth of the
# hidden state, trains on windows carried from batch to batch so that the network also learns its
# own long run, and judges the network every few epochs ([the method](../method.md), §3).

# %%
run = hmmrnn.train("linear2", hmm=hmm, out=workdir / "two_wells", hidden=32, noise_dim=8,
                   seq_len=30, num_seq=3000, batch_size=1000, epochs=60, eval_every=20, eval_n=500,
                   seed=0, progress=False, evaluate=False)
print(run)
[(row["epoch"], round(row["train_loss"], 2)) for row in run.history[::10]]

# %% [markdown]
# The loss curve, as `hmmrnn report` draws it (every figure of the package is a plain matplotlib
# Figure):

# %%
import io

from IPython.display import Image

from hmmrnn.plots import plot_history

buffer = io.BytesIO()
plot_history(run.history, title="two_wells").savefig(buffer, format="png", dpi=80, bbox_inches="tight")
Image(buffer.getvalue())

# %% [markdown]
# ## Is it an emulator?
#
# `hmmrnn.evaluate` samples N sequences from the network and N from the HMM and compares them at
# every horizon: the training window from h0 = 0, the boundedness of a long run, and stationary
# windows cut from late in long chains. Every check's allowance is a stated tolerance plus z standard
# errors at this N and T, and every number stands next to its HMM-vs-HMM baseline.

# %%
result = hmmrnn.evaluate(run, n=500, seed=0, refit=False, matching=False, figures=False)
print(result.verdict)
for check in result.checks:
    if check.status != "pass":
        print(f"{check.window:>18}  {check.name}: |diff| {check.value:.4f}, allowed {check.limit:.4f}")

# %% [markdown]
# At this size and training length the answer is no. The packaged models were trained with the
# defaults until the verdict said yes at every horizon; here is one of them judged the same way, at
# N = 2000 (at N = 500 the same model gets "inconclusive": too few sequences to tell a small
# difference from none):

# %%
from hmmrnn.zoo import ZOO_DIR

zoo_run = hmmrnn.load_run(ZOO_DIR / "linear3")
print(hmmrnn.evaluate(zoo_run, n=2000, seed=0, refit=False, matching=False, save=False, figures=False).summary())
