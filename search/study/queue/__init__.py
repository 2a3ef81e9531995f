"""The queue: each trial is run by one worker only, and run again when its worker dies.

A grid's missing points wait as Optuna trials, and a worker claims one with an update that
succeeds for one claimant only (``claims``), under the study's lock where the database alone
does not serialise it (``locks``). A worker records who it is on each trial it claims
(``identity``) and beats a heartbeat while it runs one; a trial whose worker died is failed,
by its process id on this machine or its silent heartbeat anywhere, so that its point runs
again (``recovery``).
"""
