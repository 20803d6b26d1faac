"""Run by tests/test_vision_freeze.py in a fresh interpreter: build verl's real FSDP2 actor engine on the CPU for
a tiny Qwen2.5-VL with or without ``freeze_vision_tower``, take one optimizer step on a loss that flows through
the image, and print which parameter groups moved (JSON on the last line).

Usage: python -m tests.support.vision_freeze_probe TINY_MODEL_DIR true|false PORT
"""

import json
import os
import sys


def main() -> None:
    tiny, freeze, port = sys.argv[1], sys.argv[2], sys.argv[3]
    os.environ.update(VERL_PLATFORM="cpu", MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK="0", WORLD_SIZE="1",
                      LOCAL_RANK="0")
    import torch
    from hydra import compose, initialize_config_dir
    from PIL import Image
    from transformers import AutoProcessor

    import verl  # noqa: F401  (loads the verl-rise plugin)
    from tests.support.paths import REPO_ROOT
    from verl.utils.config import omega_conf_to_dataclass
    from verl.workers.config import HFModelConfig
    from verl.workers.engine import EngineRegistry

    with initialize_config_dir(config_dir=str(REPO_ROOT / "recipes"), version_base=None):
        cfg = compose("rise_grpo_cpu_tiny", overrides=[f"actor_rollout_ref.model.path={tiny}",
                                                       f"actor_rollout_ref.actor.freeze_vision_tower={freeze}",
                                                       "actor_rollout_ref.actor.optim.lr=0.01"])
    actor_cfg = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    torch.distributed.init_process_group("gloo", rank=0, world_size=1)
    engine = EngineRegistry.new(
        model_type="language_model", backend=actor_cfg.strategy,
        model_config=omega_conf_to_dataclass(cfg.actor_rollout_ref.model, dataclass_type=HFModelConfig),
        engine_config=actor_cfg.engine, optimizer_config=actor_cfg.optim, checkpoint_config=actor_cfg.checkpoint,
    )
    engine.initialize()
    module = engine.module

    def snapshot():
        return {n: (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone()
                for n, p in module.named_parameters()}

    before = snapshot()
    processor = AutoProcessor.from_pretrained(tiny)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    image = Image.new("RGB", (112, 112), (200, 30, 30))
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    # verl's patched Qwen2.5-VL forward wants (4, batch, seq) position ids: text positions + 3D M-RoPE ones.
    vision_pos, _ = module.model.get_rope_index(
        input_ids=inputs["input_ids"], mm_token_type_ids=inputs["mm_token_type_ids"],
        image_grid_thw=inputs["image_grid_thw"], attention_mask=inputs["attention_mask"],
    )
    text_pos = torch.arange(inputs["input_ids"].shape[1])[None, None, :]
    position_ids = torch.cat([text_pos, vision_pos], dim=0)
    module.train()
    out = module(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], position_ids=position_ids,
                 pixel_values=inputs["pixel_values"], image_grid_thw=inputs["image_grid_thw"])
    out.logits.float().pow(2).mean().backward()
    engine.optimizer.step()
    after = snapshot()

    def moved(select):
        names = [n for n in before if select(n)]
        return sum(not torch.equal(before[n], after[n]) for n in names), len(names)

    result = {
        "tower_moved": moved(lambda n: ".visual." in n and ".merger." not in n),
        "merger_moved": moved(lambda n: ".visual.merger." in n),
        "language_moved": moved(lambda n: ".visual." not in n),
        "tower_requires_grad": sum(p.requires_grad for n, p in module.named_parameters()
                                   if ".visual." in n and ".merger." not in n),
    }
    torch.distributed.destroy_process_group()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
