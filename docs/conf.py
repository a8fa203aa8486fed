"""Sphinx configuration: the theory pages (MyST Markdown) and the API reference (autodoc)."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "switchssm"
author = "the switchssm developers"
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # shapes are in the docstrings; jaxtyping annotations are noise
napoleon_google_docstring = True
napoleon_numpy_docstring = False
html_theme = "alabaster"
suppress_warnings = ["myst.header"]
napoleon_use_ivar = True  # "Attributes:" as fields: no duplicate of the autodoc members
