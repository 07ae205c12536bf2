"""Per-turn rewards: component sets score each assistant turn (sets.py, tau.py); a calibration weights them."""
