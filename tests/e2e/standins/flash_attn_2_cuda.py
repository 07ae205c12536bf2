"""TEST STAND-IN (docs/testing.md): the CUDA extension of flash-attn, empty.

OpenRLHF imports ``flash_attn`` at module level (openrlhf/models/ring_attn_utils.py); flash-attn's
``__init__`` imports this compiled CUDA module, which cannot exist on a CPU machine.  Nothing in
it is called on the paths we run (packing and ring attention are off, attention is SDPA)."""
