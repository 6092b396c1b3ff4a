"""`python -m predict`: the same command as the `predict` console script."""

from predict.cli import main

main()
