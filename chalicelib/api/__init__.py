"""HTTP entry points: parse and validate, call one use case, shape the response."""
