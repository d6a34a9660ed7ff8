"""The project's benchmarks: each comparison measured side by side in one process, on the package's recipes.

    python -m benchmarks --data-dir DIR [--only PART ...] [--repeats 5] [--json FILE]
    python -m benchmarks.tables --tables DIR      # tables against gradient boosting (the `bench` extra)

Development tools, not part of the package (Python 3.11 or newer).

One short module per part (its docstring says what it measures): mlp, accuracy, scratch,
toy and overhead by default; tabular, summaries, cnn, export, images, tune and workers when asked. `timing` holds the
clocks they share, `loops` the hand-written loops ours is measured against, `recipes`
the configs they read. Timings on a shared machine are noisy: each path runs `--repeats`
times, interleaved; the headline is the median whole epoch.
"""
