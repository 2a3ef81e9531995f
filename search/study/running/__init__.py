"""Running: the workers that take trials and train them, and the final step after a search.

A worker (``workers``; several on one machine with ``pool``, or a SLURM array with ``slurm``)
takes its trials from a grid or a sampler and runs them in one loop (``runner``) within the
study's budget (``budget``, ``failures``). One trial is one call of the task's ``train``
(``objective``), whose context records each epoch and keeps a checkpoint in the trial's folder
(``recorder``, ``checkpoints``). The final step retrains the best configurations with several
seeds and tests them once (``final``, ``final_run``).
"""
