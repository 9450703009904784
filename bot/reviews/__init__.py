"""The strategic-alignment review: leader and sponsor keep, amend or retire each term."""
