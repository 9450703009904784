"""Evidence: links, notes and Slack messages tied to an indicator, activity or expectation."""
