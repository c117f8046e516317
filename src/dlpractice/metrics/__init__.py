"""Metrics taught in a lab or missing from the libraries, one family a file (ner.py, squad.py, ...)."""
