"""The study: what to try, and running it in a database that any number of workers share.

Four parts, each described in its ``__init__``: ``space`` (what to try and how to choose),
``storage`` (where a study lives and every record it keeps), ``queue`` (each trial run by one
worker, and again when its worker dies) and ``running`` (workers, one trial's objective, the
final step). The layer imports the engine and the tasks, and nothing above them; the modules
that views read (space, storage, trials, budget) import no torch.
"""
