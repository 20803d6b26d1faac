"""verl_rise.verl_ext.startup_checks.shared_tokenizer_loads: one tokenizer load per path during pre-flight."""

from __future__ import annotations

from tests.support.paths import QWEN_PROCESSOR, require


def test_each_tokenizer_path_is_loaded_once_inside_the_block_and_verls_loaders_come_back(monkeypatch):
    require(QWEN_PROCESSOR)
    import verl.workers.config.model as model_config

    from verl_rise.verl_ext.startup_checks import shared_tokenizer_loads

    loads = []
    monkeypatch.setattr(model_config, "hf_tokenizer", lambda path, **kw: loads.append((path, kw)) or object())
    verls = model_config.hf_tokenizer
    with shared_tokenizer_loads():
        first = model_config.hf_tokenizer(str(QWEN_PROCESSOR), trust_remote_code=False)
        assert model_config.hf_tokenizer(str(QWEN_PROCESSOR), trust_remote_code=False) is first
        assert model_config.hf_tokenizer(str(QWEN_PROCESSOR), trust_remote_code=True) is not first  # other options
    assert len(loads) == 2
    assert model_config.hf_tokenizer is verls  # restored
    model_config.hf_tokenizer(str(QWEN_PROCESSOR))
    assert len(loads) == 3  # no cache outside the block
