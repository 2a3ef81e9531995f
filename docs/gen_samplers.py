"""The samplers and pruners as a table, read from their registries
(``search.study.space.samplers``): each sampler's default pruner, its random start-up, whether
it takes several objectives and what it needs beyond Optuna. Nothing here imports torch until a
page is built.
"""

from __future__ import annotations


def samplers_table() -> str:
    from search.study.space.samplers import (
        DEFAULT_PRUNER,
        MULTI_OBJECTIVE,
        NEEDS,
        SAMPLERS,
        STARTUP,
    )

    rows = [
        "| `--sampler` | default `--pruner` | random start-up | several objectives | needs |",
        "|---|---|---|---|---|",
    ]
    for name in SAMPLERS:
        startup = f"{STARTUP[name]} trials" if name in STARTUP else ""
        several = "yes" if name in MULTI_OBJECTIVE else "no"
        needs = f"{NEEDS[name]} (the `samplers` extra)" if name in NEEDS else ""
        rows.append(f"| `{name}` | `{DEFAULT_PRUNER[name]}` | {startup} | {several} | {needs} |")
    return "\n".join(rows)
