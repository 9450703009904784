"""Privacy: the key behind anonymous authors; export or erasure of what is kept on a person."""
