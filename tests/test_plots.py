"""Figures: built without touching the global matplotlib state."""

from __future__ import annotations


def test_importing_hmmrnn_leaves_matplotlib_settings_alone():
    """A notebook's backend and rcParams are its own: importing every module and saving a figure
    changes neither, while the saved PDF still embeds TrueType fonts."""
    import subprocess
    import sys

    script = (
        "import matplotlib\n"
        "matplotlib.rcParams['pdf.fonttype'] = 3\n"
        "before = dict(matplotlib.rcParams)\n"
        "backend = matplotlib.rcParams._get_backend_or_none()\n"
        "import hmmrnn, hmmrnn.plots, hmmrnn.report, hmmrnn.analysis\n"
        "from hmmrnn.plots import plot_history, save_figure\n"
        "import tempfile, pathlib\n"
        "folder = pathlib.Path(tempfile.mkdtemp())\n"
        "save_figure(plot_history([{'epoch': 1, 'train_loss': 2.0, 'val_loss': 1.5}], title='t', ylabel='y'),"
        " folder / 'loss')\n"
        "assert dict(matplotlib.rcParams) == before\n"
        "assert matplotlib.rcParams._get_backend_or_none() == backend\n"
        "pdf = (folder / 'loss.pdf').read_bytes()\n"
        "print(b'/Subtype /Type3' not in pdf and (b'/CIDFontType2' in pdf or b'/Subtype /TrueType' in pdf))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
