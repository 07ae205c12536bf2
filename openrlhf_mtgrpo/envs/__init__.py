"""Environments the rollout can run against."""
