"""Citations are self-contained: no file in the repository cites a reference file outside it.

Every published number names its original source (paper with section/table/figure, repository with
file path and commit, datasheet), never a notes file that only the authors had next to the checkout.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Spelled in two pieces so that this file does not match itself.
FORBIDDEN = ("REFERENCE" + ".md", "shared" + "/seeds")
SKIPPED_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache", ".hypothesis"}


def _repository_files() -> list[Path]:
    """The files git tracks or would track (not ignored); without git, every file outside SKIPPED_DIRS."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()]
    except (OSError, subprocess.CalledProcessError):
        return [
            path
            for path in ROOT.rglob("*")
            if path.is_file() and not SKIPPED_DIRS & set(path.relative_to(ROOT).parts) and ".egg-info" not in str(path)
        ]


def test_no_file_cites_a_reference_file_outside_the_repository() -> None:
    offenders = []
    for path in _repository_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if any(word in line for word in FORBIDDEN):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert offenders == [], "cite the original source instead:\n" + "\n".join(offenders)
