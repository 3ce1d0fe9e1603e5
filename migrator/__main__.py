"""`python -m migrator` is the same entry point as the `migrator` command."""

from migrator.cli import main

if __name__ == "__main__":  # pragma: no cover
    main(prog_name="migrator")
