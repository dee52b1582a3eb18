"""Helpers shared by the data layer (:mod:`bench.datasets`), the harness and the pipelines.

A package of its own because data must know no pipeline and pipelines never import the harness: it imports
neither ``bench`` nor ``pipelines``, so both may import it. :mod:`.files` (atomic writes), :mod:`.digest`
(array digests), :mod:`.progress` (progress bars).
"""
