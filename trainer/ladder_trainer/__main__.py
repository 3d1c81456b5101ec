import sys

from ladder_trainer.main import main

sys.exit(main())
