"""Fitting a scaling law to a user's training runs, one module per concept:

  parametric  Approach 3: L = E + A/N^alpha + B/D^beta by the sum of Huber losses on log loss
  lbfgs       its optimiser (a batched L-BFGS) and the initialisation grid of its starts
  bootstrap   resampling the runs and refitting, for standard errors and intervals
  isoflop     Approach 2: parabolas per compute budget, power laws through their minima

The names below are the package's public surface (`import llmplan.scaling.fit as fit; fit.fit_parametric`).
"""

from llmplan.scaling.fit.bootstrap import Bootstrap, bootstrap_parametric, bootstrap_summary, resample_weights
from llmplan.scaling.fit.isoflop import IsoflopResult, IsoflopWarning, fit_isoflop, group_budgets
from llmplan.scaling.fit.lbfgs import DEFAULT_GRID, MAX_GRID_VALUES, PARAMS, batched_lbfgs, grid_size, grid_starts, parse_grid
from llmplan.scaling.fit.parametric import (
    BUDGETS, CONVERGED_RTOL, DEFAULT_DELTA, ParametricFit, data_warnings, derived, exponent_problem, fit_parametric,
    gradient_scale, huber, identifiability_problem, law_toml, log_predicted, objective_and_gradient, parametric_row,
    polish, ratio_key, residual_rows, residuals,
)

__all__ = [
    "BUDGETS", "Bootstrap", "CONVERGED_RTOL", "DEFAULT_DELTA", "DEFAULT_GRID", "IsoflopResult", "IsoflopWarning", "MAX_GRID_VALUES", "PARAMS",
    "ParametricFit", "batched_lbfgs", "bootstrap_parametric", "bootstrap_summary", "data_warnings", "derived",
    "exponent_problem", "fit_isoflop", "fit_parametric", "gradient_scale", "grid_size", "grid_starts", "group_budgets",
    "huber", "identifiability_problem", "law_toml", "log_predicted", "objective_and_gradient", "parametric_row",
    "parse_grid", "polish", "ratio_key", "resample_weights", "residual_rows", "residuals",
]
