"""The space: what a study tries, and how it chooses.

A space (``space``, the one place that calls ``trial.suggest_*``) comes from a task's own
definition or a TOML file (``spacefile``); seeded sampler and pruner registries search it
(``samplers``); a search starts from what is already known (``warm``).
"""
