"""Where a command's output goes: standard output, or a file named with --out."""

from __future__ import annotations

import sys
from pathlib import Path


def write_output(text: str, out: Path | None) -> None:
    """Print `text`, or write it to `out` (making its folder) and say so on stderr."""
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"Wrote {out}.", file=sys.stderr)
