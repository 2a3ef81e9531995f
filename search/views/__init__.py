"""Views of a study's results: summaries, figures, HTML reports, dashboard publishing, best.

Each computes plain data from the database first (rows, series, effects), then draws or
formats it, so tests assert on the data. Views read the study layer and import no torch: a
report or the dashboard starts in a fraction of a second.
"""
