"""Evaluation metrics over stored episode results."""
