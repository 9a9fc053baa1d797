"""Sphinx configuration for the skshortcut documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import skshortcut  # noqa: E402

project = "skshortcut"
author = "skshortcut developers"
copyright = "2026, skshortcut developers"
release = skshortcut.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
]

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
templates_path = ["_templates"]
exclude_patterns = ["_build"]
html_theme = "pydata_sphinx_theme"
html_static_path = ["_static"]
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_title = "skshortcut"

intersphinx_mapping = {}  # no network while building: cross-references stay local
nitpicky = False
suppress_warnings = ["config.cache"]
