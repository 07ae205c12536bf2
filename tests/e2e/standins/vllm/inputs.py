"""TEST STAND-IN (docs/testing.md): ``vllm.inputs.TokensPrompt``, a plain dict as in vLLM (a TypedDict)."""


def TokensPrompt(**kwargs):  # noqa: N802 (vLLM's name)
    if "prompt_token_ids" not in kwargs:
        raise TypeError("TokensPrompt needs prompt_token_ids")
    return dict(kwargs)
