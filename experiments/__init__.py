"""Outermost layer: the ``lsa-theory`` command line and the experiment drivers.

Imports go ``lsa_theory`` <- ``constructions`` <- ``dynamics`` <- ``experiments``.
"""
