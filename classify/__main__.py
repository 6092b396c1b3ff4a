"""`python -m classify`: the same command as the `classify` console script."""

from classify.cli import main

main(prog_name="classify")
