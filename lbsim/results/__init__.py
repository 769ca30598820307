"""What a run leaves: the result folder (atomic), summaries, expectations, JUnit, autoscaling tables.

Imports the simulation layers below it; never the experiments, report, server or CLI.
"""
