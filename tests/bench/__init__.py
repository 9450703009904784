"""Benchmarks of the real app against a bare Bolt app, run with `python -m tests.bench`.

Each benchmark is a module here exposing `NAME` and `async def run(options) -> Result`;
`__main__` lists them, prints each result's table and writes its JSON to `data/bench/`.
"""
