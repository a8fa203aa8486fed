"""Checks behind ``switchssm verify``: each identity or approximation computed both ways.

:mod:`switchssm.verify.layers` holds the rows for the sequence layers read as state-space
models (:func:`switchssm.verify.layers.layer_checks`).
"""
