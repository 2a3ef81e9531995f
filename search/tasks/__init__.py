"""Tasks: what a trial trains. A task follows the contract of ``search.task``; this package
finds one from ``--task`` (``loading``) and holds the built-in ones: the MLP of the reference
study (``mlp``, the default) and the command task for scripts that cannot be rewritten
(``command``, ``--task 'cmd:python train.py --lr {lr}'``)."""
