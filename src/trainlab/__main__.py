"""``python -m trainlab``: the same command line as ``trainlab``."""

from trainlab.cli import main

if __name__ == "__main__":
    main()
