"""Study layer: the tables and claim checks behind each notebook, computed from the results table and the measures
tables (``adaptlib.measures``: what is computed from data and models), and the figures. No model, no dataset.

``tables``: main results (few-shot, curves, base-to-new). ``difficulty``: APEX's transfer-difficulty question.
``variance``: the NTU study's inter/intra-class variance and hybrid strategy. ``drift``: CLIPFit's parameter and
representation drift. ``plots``: the figures. ``notebook``: a notebook's inputs (results, measures) and outputs.
Notebooks hold narrative, parameters and plots; logic lives here.
"""
