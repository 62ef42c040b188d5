"""`python -m behaviorlab` runs the CLI, like the `behaviorlab` console script."""

from behaviorlab.cli import run

if __name__ == "__main__":
    run()
