"""``python -m bot.train_job JOB.json``: one retraining run in its own process (``bot.retrain.job``)."""

import sys

from bot.retrain.job import main

if __name__ == "__main__":
    sys.exit(main())
