"""Storage: where a study lives, and everything it keeps.

A database URL is checked and opened (``storage``, with SQLite files checked before Optuna
touches them in ``sqlite_files``); a study is made with its settings and space, or resumed only
with the same (``opening``, ``settings``). Every key the service keeps on a trial or a study is
spelled in ``records``, and ``trials`` reads a trial's result back one way for every view.
``folders`` says where each trial's files go in the artifact folder. ``internals`` holds each
use of a private Optuna API, with its reason.
"""
