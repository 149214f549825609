"""Use cases: each receives its collaborators, so tests can hand in fakes."""
