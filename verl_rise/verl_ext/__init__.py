"""Everything of verl-rise that imports verl: the only package that may.

verl-rise extends verl 0.9.1 through verl's own hooks where they exist and through a few guarded patches where they
do not. :mod:`.compat` names each verl internal we touch and holds the one version check; the modules:

* :mod:`.plugin` - the ``verl.plugins`` entry point (runs in the driver, every Ray worker and every torchrun rank);
  :mod:`.registry` - its registration steps and their outcome (kept apart so that the steps' modules can import it
  without importing the entry point back).
* :mod:`.cpu_backend`, :mod:`.cpu_platform`, :mod:`.hf_rollout` - the CPU device platform and the HF rollout engine.
* :mod:`.vision_freeze` - ``actor.freeze_vision_tower`` (declared by verl 0.9.1, read by nothing there).
* :mod:`.passrate_hooks` - the replay-buffer sampler and checkpoint callback that feed the pass-rate tracker.
* :mod:`.sft_dataset` - the SFT dataset classes for verl's SFT trainer.
* :mod:`.reward_loader` and :mod:`.startup_checks` - verl's reward loader and the start-up checks of ``main_ppo``
  and the SFT trainer, for our command-line tools and pre-flight.
"""
