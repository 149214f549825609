"""Persistence: PynamoDB records, their binding to a stage's tables, repositories."""
