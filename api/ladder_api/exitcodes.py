"""Exit codes shared by the pods and the rendered podFailurePolicy.

The JobSet's podFailurePolicy fails the Job (no restart) for every exit code outside
[RESTARTABLE] + 127..255, as xpk does; so a trainer that saved a checkpoint on SIGTERM exits
RESTARTABLE and gets restarted, while a user error (USER_ERROR) fails fast without burning
restarts.
"""

OK = 0
USER_ERROR = 2
RESTARTABLE = 42
SIGNAL_RANGE = (127, 255)
