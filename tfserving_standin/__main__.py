"""``python -m tfserving_standin [flags]``: run the TensorFlow Serving stand-in.

See tfserving_standin/server.py for the start-up protocol and cli.py for the flags.
"""

import os
import sys

# TensorFlow's C++ start-up chatter drowns the stand-in's own log; set before TF is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .server import main

if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: background threads may sit inside TensorFlow, and the exit
    # status (255 on a failed start, as the real server) must be reliable.
    os._exit(code)
