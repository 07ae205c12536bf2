"""Offline stand-ins for the demo and the tests: a toy tokenizer with a Qwen-style chat
template, a scripted policy engine and a rule-based customer.  Nothing here is a model:
the demo says so in its output."""
