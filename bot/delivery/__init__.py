"""The messages the bot sends on its own: claimed once, paced, kept."""
