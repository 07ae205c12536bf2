"""The real Qwen3 tokenizer assembled offline (dashscope's qwen.tiktoken + Qwen3's added tokens)."""

import pytest

from qwen_fixtures import qwen_tokenizer

from openrlhf_mtgrpo.offline import qwen_tokenizer as qt


@pytest.fixture(scope="module")
def tok():
    return qwen_tokenizer("qwen3")


def ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def test_vocabulary_and_published_added_token_ids(tok):
    assert len(tok) == 151669  # 151,643 regular tokens + 26 added (151643..151668)
    assert tok.convert_tokens_to_ids("<|im_start|>") == 151644
    for i, (content, _) in qt.QWEN3_ADDED_TOKENS.items():
        assert tok.convert_tokens_to_ids(content) == i
        assert ids(tok, content) == [i]  # one token each, never split
    assert (tok.eos_token, tok.eos_token_id, tok.pad_token_id, tok.bos_token) == ("<|im_end|>", 151645, 151643, None)
    # Qwen3 marks <tool_call>, <tool_response>, <think> as non-special: decoding without specials keeps them
    text = "<|im_start|>assistant\n<think>\nx\n</think>\n\n<tool_call>\n{}\n</tool_call><|im_end|>"
    kept = "assistant\n<think>\nx\n</think>\n\n<tool_call>\n{}\n</tool_call>"
    assert tok.decode(ids(tok, text), skip_special_tokens=True) == kept
    assert len(qt.vocab_and_merges()[1]) == 151387  # one merge per multi-byte token, as Qwen's merges.txt


def test_hello_world_from_the_ranks(tok):
    ranks = qt.load_ranks()
    # the rank file's own entries: whole-word tokens "Hello" and " world"
    assert (ranks[b"Hello"], ranks[b" world"]) == (9707, 1879)
    assert ids(tok, "Hello world") == [9707, 1879]
    assert ids(tok, "Hello world\n\n") == [9707, 1879, ranks[b"\n\n"]]
    # digits are split one by one (Qwen2's pre-tokenisation rule), each is its byte's rank
    assert ids(tok, "2024") == [ranks[b"2"], ranks[b"0"], ranks[b"2"], ranks[b"4"]]


# The encodings HF's transformers publishes for the real Qwen/Qwen-tokenizer (revision 5909c82), in
# tests/models/qwen2/test_tokenization_qwen2.py::test_tokenizer_integration: English, Chinese with an
# emoji, code.  Qwen2, Qwen2.5 and Qwen3 share this vocabulary.
PUBLISHED = [
    ("Transformers (formerly known as pytorch-transformers and pytorch-pretrained-bert) provides "
     "general-purpose architectures (BERT, GPT-2, RoBERTa, XLM, DistilBert, XLNet...) for Natural "
     "Language Understanding (NLU) and Natural Language Generation (NLG) with over 32+ pretrained "
     "models in 100+ languages and deep interoperability between Jax, PyTorch and TensorFlow.",
     [8963, 388, 320, 69514, 3881, 438, 4510, 27414, 32852, 388, 323, 4510, 27414, 21334, 35722, 1455, 529, 8,
      5707, 4586, 58238, 77235, 320, 61437, 11, 479, 2828, 12, 17, 11, 11830, 61437, 64, 11, 1599, 10994, 11,
      27604, 321, 33, 529, 11, 29881, 6954, 32574, 369, 18448, 11434, 45451, 320, 45, 23236, 8, 323, 18448,
      11434, 23470, 320, 30042, 38, 8, 448, 916, 220, 18, 17, 10, 80669, 4119, 304, 220, 16, 15, 15, 10, 15459,
      323, 5538, 94130, 2897, 1948, 619, 706, 11, 5355, 51, 21584, 323, 94986, 13]),
    ("🤗 Transformers 提供了可以轻松地下载并且训练先进的预训练模型的 API 和工具。"
     "使用预训练模型可以减少计算消耗和碳排放，并且节省从头训练所需要的时间和资源。",
     [144834, 80532, 93685, 83744, 34187, 73670, 104261, 29490, 62189, 103937, 104034, 102830, 98841, 104034,
      104949, 9370, 5333, 58143, 102011, 1773, 37029, 98841, 104034, 104949, 73670, 101940, 100768, 104997,
      33108, 100912, 105054, 90395, 100136, 106831, 45181, 64355, 104034, 113521, 101975, 33108, 85329, 1773]),
    ('```python\ntokenizer = AutoTokenizer.from_pretrained("Qwen/Qwen-tokenizer")\ntokenizer("世界，你好！")```',
     [73594, 12669, 198, 85593, 284, 8979, 37434, 6387, 10442, 35722, 445, 48, 16948, 45274, 16948, 34841, 3135,
      1138, 85593, 445, 99489, 3837, 108386, 6313, 899, 73594]),
]


@pytest.mark.parametrize("text,expected", PUBLISHED, ids=["english", "chinese", "code"])
def test_published_encodings_of_the_real_qwen_tokenizer(tok, text, expected):
    assert ids(tok, text) == expected
    assert tok.decode(expected) == text


def test_plain_text_round_trips(tok, data_dir):
    from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv

    env = AirlineEnv("tau2", data_dir)
    for text in ["The quick brown fox jumps over the lazy dog.", "  spaces\tand\ttabs \n\n\nnewlines  ",
                 env.policy, env.task("7").user_instructions, "naïve café — 東京 ✈️"]:
        assert tok.decode(ids(tok, text)) == text


def test_missing_packages_name_the_install_command(monkeypatch):
    import importlib.metadata as md

    def missing(name):
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(md, "distribution", missing)
    with pytest.raises(qt.QwenFixturesMissing, match="pip install --no-deps dashscope==2.0.2 trl==1.16.0"):
        qt.ranks_path()
    with pytest.raises(qt.QwenFixturesMissing, match="'trl' is not installed"):
        qt.read_template("qwen3")
