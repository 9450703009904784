"""Milestones: decided met or missed, celebrated or recalibrated, everyone told once."""
