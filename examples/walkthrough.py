# %% [markdown]
# # hmmrnn walkthrough
#
# A notebook in percent format: run it cell by cell in VS Code / Jupyter (jupytext), or as a script,
# `python examples/walkthrough.py` (about two minutes on a 2-core CPU). It takes a pretrained model
# apart, then defines an HMM of its own and trains a small network on it.

# %%
from pathlib import Path

import hmmrnn
from hmmrnn import analysis, report, zoo

out = Path("runs/walkthrough")
out.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. A pretrained model: the paper's two-state chain
# `zoo.get` copies a packaged model into a normal run folder.

# %%
print("\n".join(f"{e['name']}: {e['epochs']} epochs, emulates {e['emulates']}" for e in zoo.list_models()))
run = zoo.get("linear2", out / "linear2", force=True)
print(run)

# %% [markdown]
# ## 2. Does it emulate its HMM?
# N = 5000 fresh sequences against as many of the HMM's: the sample size the verdict's limits are
# set for (with fewer sequences, sampling noise alone can push a check over its limit).

# %%
result = hmmrnn.evaluate(run, n=5000, seed=0, refit=False)
print(result.summary())

# %% [markdown]
# ## 3. How does it do it?
# The noise-sustained orbit and its single attracting fixed point, where the network dwells
# (residency), and which units fire before each kind of switch.

# %%
geometry = analysis.latent_geometry(run, seed=0)
points = analysis.fixed_points(run, seed=0)
dwell = analysis.residency(run, n_states=1000, seed=0)
kicks = analysis.kick_neurons(run, seed=0)
for result_ in (geometry, points, dwell, kicks):
    print(f"{result_.name}: {result_.summary()}")
    result_.save(out / "linear2" / "analysis" / f"{result_.name}.json")

# %%
from hmmrnn import plots

plots.save_figure(plots.plot_residency(dwell), out / "linear2" / "analysis" / "residency")
print("report:", report.write_report(out / "linear2"))

# %% [markdown]
# ## 4. Your own HMM
# Two sticky states, each emitting mostly one of three symbols; a small network, a few epochs
# (far from emulating: this only shows the calls; `hmmrnn.train(hmm=..., ...)` with the default
# recipe trains until the verdict says yes).

# %%
hmm = hmmrnn.HMM(transition=[[0.9, 0.1], [0.1, 0.9]], emission=[[0.8, 0.15, 0.05], [0.05, 0.15, 0.8]],
                 name="sticky-pair")
obs, states = hmm.sample(n=5, length=12, seed=0)
print(obs)
small = hmmrnn.train(hmm=hmm, hidden=32, input=8, seq_len=20, num_seq=3000, batch_size=500, epochs=3,
                     seed=0, out=out / "sticky", force=True, progress=False, evaluate=False)
print(small.history[-1])
