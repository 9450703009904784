"""Answering what leaders write: reading a whole check-in, replying to it, nudging a missed week."""
