"""What a reader sees of a contract: `/contract summary`, App Home, headlines."""
