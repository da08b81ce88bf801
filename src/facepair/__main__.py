import sys

from .cli import main

if __name__ == "__main__":      # not in a helper process that multiprocessing spawns
    sys.exit(main())
