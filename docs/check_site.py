"""Check a built site: the API reference has an entry for every name in ``hmmrnn.__all__`` and
``hmmrnn.analysis.__all__``, the command-line reference lists the commands' options, and each
tutorial page shows executed output.

    mkdocs build --strict && python docs/check_site.py site
"""

from __future__ import annotations

import sys
from pathlib import Path

import hmmrnn
import hmmrnn.analysis


def check(site: Path) -> list[str]:
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    problems = [f"API reference lacks {module.__name__}.{name}"
                for module in (hmmrnn, hmmrnn.analysis) for name in module.__all__
                if name != "__version__" and f'id="{module.__name__}.{name}"' not in api]
    cli = (site / "cli" / "index.html").read_text(encoding="utf-8")
    problems += [f"command-line reference lacks {flag}" for flag in ("--preset", "--noise-dim", "--page-only")
                 if flag not in cli]
    for page in sorted((site / "tutorials").glob("*/index.html")):
        if "jp-OutputArea-output" not in page.read_text(encoding="utf-8"):
            problems.append(f"tutorial {page.parent.name} shows no output (not executed?)")
    return problems


if __name__ == "__main__":
    found = check(Path(sys.argv[1] if len(sys.argv) > 1 else "site"))
    print("\n".join(found) or "site check: every public name documented, every tutorial executed")
    sys.exit(1 if found else 0)
