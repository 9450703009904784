"""Charts of indicators and confidence: drawn from a contract's data, uploaded once, shown."""
