"""Runs: one run (``run``), its identity (``spec``), sweep profiles (``profile``), the sweep itself (``sweep``,
``cluster``), the results store (``store``) and the collected table (``table``)."""
