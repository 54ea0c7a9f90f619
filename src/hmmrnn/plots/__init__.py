"""Figures. Each function takes computed results and returns a matplotlib Figure; nothing here computes.

``save_figure`` writes PNG (for reports) and PDF (for papers, fonts embedded as TrueType).
"""

from ._common import save_figure
from .analysis import (plot_ablation, plot_connectivity, plot_fixed_points, plot_gain_sweep, plot_kick_neurons, plot_input_free, plot_jacobian_spectra, plot_latent_geometry,
                       plot_noise_drift, plot_noise_sensitivity, plot_output_pairs, plot_readout_alignment, plot_residency,
                       plot_subspace_residency,
                       plot_stochastic_resonance, plot_training_evolution, plot_transition_points,
                       plot_variance_contours)
from .evaluation import (plot_dwell_times, plot_frequencies, plot_horizons, plot_matched_distances, plot_transition_matrices,
                         plot_volatility, save_evaluation_figures)
from .training import plot_history

__all__ = ["plot_history", "plot_transition_matrices", "plot_frequencies", "plot_volatility",
           "plot_matched_distances", "plot_dwell_times", "plot_horizons", "save_evaluation_figures", "save_figure",
           "plot_latent_geometry", "plot_input_free", "plot_fixed_points", "plot_variance_contours",
           "plot_output_pairs", "plot_readout_alignment", "plot_jacobian_spectra", "plot_residency", "plot_subspace_residency",
           "plot_kick_neurons", "plot_connectivity", "plot_ablation", "plot_noise_drift",
           "plot_stochastic_resonance", "plot_transition_points", "plot_noise_sensitivity",
           "plot_gain_sweep", "plot_training_evolution"]
