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
# # Taking a network apart
#
# The packaged `linear3` model (H = 150, d = 100) emulates the paper's 3-state chain at every horizon.
# How does it do it? Each analysis is a function of a run (or a network) and a seed, returns a
# result with a one-line `summary()`, and has a figure. The settings below are smaller than the
# defaults so that the page builds in a few minutes on a 2-core CPU; `hmmrnn analyze RUN` runs them
# all at full size ([the method](../method.md), §5, says what each computes).

# %%
import io

from IPython.display import Image

import hmmrnn
from hmmrnn import analysis
from hmmrnn.zoo import ZOO_DIR

run = hmmrnn.load_run(ZOO_DIR / "linear3")
print(run)


def show(name, result):
    """Print an analysis' summary and show its registered figure (hmmrnn's figures are plain
    matplotlib Figures, drawn without touching the notebook's backend)."""
    print(result.summary())
    buffer = io.BytesIO()
    analysis.ANALYSES[name].figure(result).savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return Image(buffer.getvalue())


# %% [markdown]
# ## Geometry of the noisy orbit
#
# A long noisy run, its principal components, and how well the angle in the PC1–PC2 plane predicts
# the output.

# %%
geometry = analysis.latent_geometry(run, steps=10_000, seed=0)
show("latent_geometry", geometry)

# %% [markdown]
# ## Without noise: one fixed point
#
# The network has no biases, so the origin is always a fixed point of the input-free map. Do all
# states of the orbit fall back to it when the noise is switched off?

# %%
free = analysis.input_free(run, n_initial=30, steps=300, pca_steps=10_000, seed=0)
show("input_free", free)

# %%
points = analysis.fixed_points(run, n_initial=64, iterations=300, orbit_steps=5000, seed=0)
show("fixed_points", points)

# %% [markdown]
# ## Residency: clusters, kick zones, transitions
#
# From each state of the orbit, noisy rollouts measure how long the output stays put. Long dwells are
# clusters; short ones kick zones; immediate switches transitions.

# %%
zones = analysis.residency(run, n_states=1000, n_samples=10, seed=0)
show("residency", zones)

# %% [markdown]
# ## Kick neurons and whether they are causal
#
# Units whose drive turns positive just before one kind of switch and rarely otherwise; silencing
# them should slow that switch down more than silencing as many random units. A network without such
# units is a finding, which the analyses report instead of failing.

# %%
kicks = analysis.kick_neurons(run, steps=20_000, seed=0)
show("kick_neurons", kicks) if any(d["units"] for d in kicks.directions) else print(kicks.summary())

# %%
try:
    silenced = analysis.ablation(run, kicks=kicks, n_random=4, chains=16, steps=1000, seed=0)
    show("ablation", silenced)
except hmmrnn.errors.NothingFound as why:
    print("nothing to silence:", why)

# %% [markdown]
# ## All at once
#
# `analysis.analyze(run_dir, only=[...], settings={...})` runs a selection on a run folder and writes
# each result as JSON and its figure next to it; `hmmrnn report RUN` then puts them on one page.
