"""``python -m hmmrnn`` runs the command line."""

from .cli import main

main()
