"""Study layer: the tables, measures and claim checks behind each notebook, computed from collected results.

``tables``: main results (few-shot, curves, base-to-new). ``difficulty``: APEX's transfer-difficulty question.
``variance``: the NTU study's inter/intra-class variance and hybrid strategy. ``drift``: CLIPFit's parameter and
representation drift. ``plots``: the figures. Notebooks hold narrative, parameters and plots; logic lives here.
"""
