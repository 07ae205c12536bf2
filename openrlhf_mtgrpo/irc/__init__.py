"""Iterative Reward Calibration: offline analysis of rollout logs, and online gating (EDG)."""
