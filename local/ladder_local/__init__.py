"""The local backend of `ladder run`: the operator's Plan executed on this machine.

Each size's trainer and evaluator run as subprocesses through the same entry points the cluster
pods use (`python -m ladder_trainer --config`, `python -m ladder_evaluator --config
--checkpoint`), and `status.json` in the run directory has the custom resource's status shape.
Pure parts (layout, the evaluation grid, resume decisions, status building, table rendering) are
separate from the parts that touch processes and files (observe, processes, runner, view).
"""
