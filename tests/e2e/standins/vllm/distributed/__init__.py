"""TEST STAND-IN (docs/testing.md): the two classes of ``vllm.distributed`` that OpenRLHF's weight sync uses."""
