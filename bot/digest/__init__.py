"""The sponsor's digest: exceptions first, then progress, one per recipient and period."""
