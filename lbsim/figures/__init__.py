"""Figures (matplotlib) drawn from result tables: used by the experiments, the reports and the CLI.

Imports :mod:`lbsim.scenario`, :mod:`lbsim.sim` constants and :mod:`lbsim.results` only; matplotlib is
imported when a figure is drawn.
"""
