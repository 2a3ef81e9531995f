"""The study: what to try, and running it in a database that any number of workers share.

Spaces (TOML files and the vocabulary they map onto the engine's configurations), seeded
sampler and pruner registries, the objective (one Optuna trial = one ``engine.fit``), storage
(opening a URL, locks, recovery of dead workers' trials, worker identity), the grid's queue of
claims, the runner that claims and runs trials, and the worker processes. It imports the
engine and nothing above it; the modules that views read (space, storage, trials) import no
torch.
"""
