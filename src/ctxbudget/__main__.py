"""``python -m ctxbudget`` runs the CLI."""

from ctxbudget.cli import main

if __name__ == "__main__":
    main()
