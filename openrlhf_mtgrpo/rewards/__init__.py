"""Per-turn reward model: classify each assistant turn, weight its components from a calibration file."""
