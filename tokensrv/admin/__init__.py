"""Administration of clients, users, sessions, consents and keys, shared by every way an operator
reaches it: the CLI on the store directly, and (through them) the commands that act in bulk.
operations.py holds the acts themselves, with no argument parsing and no HTTP."""
