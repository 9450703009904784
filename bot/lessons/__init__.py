"""Lessons: what leaders learned, shared with or without their name, and searched by all."""
