"""Risks with a life: noticed, owned, carried until resolved, escalated, and measured."""
