import sys

from ladder_evaluator.main import main

sys.exit(main())
