"""`dlp sweep`: a parametric study of one lab (grid, random or TPE search), each trial a tracked run.

plan.py turns the command line into a checked plan; engine.py runs it as an Optuna study in a shared
database, in one or several worker processes; report.py writes the sweep's report.
"""
