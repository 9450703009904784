"""Weekly check-ins: what is due, the prompt and its modal, saving, the prompt and reminder jobs."""
