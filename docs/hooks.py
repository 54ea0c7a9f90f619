"""MkDocs hook: the command-line reference (cli.md) is generated from the commands at build time, with
typer's own Markdown generator (the app is typer's, whose parameters mkdocs-click does not recognise)."""

from __future__ import annotations

import subprocess
import sys

PLACEHOLDER = "<!-- the commands' reference is inserted here at build time -->"


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    if PLACEHOLDER not in markdown:
        return markdown
    done = subprocess.run([sys.executable, "-m", "typer", "hmmrnn.cli", "utils", "docs", "--name", "hmmrnn"],
                          capture_output=True, text=True, check=True)
    # one heading level below the page's title
    reference = "\n".join("#" + line if line.startswith("#") else line for line in done.stdout.splitlines())
    return markdown.replace(PLACEHOLDER, reference)
