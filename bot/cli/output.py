"""What every command gives back: its output, to standard output or a file (--out), and its
exit status."""

from __future__ import annotations

import sys
from pathlib import Path

# Exit statuses: done; problems with the input or the data; the configuration is wrong.
EXIT_OK, EXIT_PROBLEMS, EXIT_CONFIG = 0, 1, 2


def write_output(text: str, out: Path | None) -> None:
    """Print `text`, or write it to `out` (making its folder) and say so on stderr."""
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"Wrote {out}.", file=sys.stderr)
