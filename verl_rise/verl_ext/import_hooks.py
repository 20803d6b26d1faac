"""Patch a verl module when it is imported, not when the plugin loads.

The plugin loads at every ``import verl`` (verl's ``verl.plugins`` entry points), in every process: the driver, the
task runner, each Ray worker. Importing a heavy verl module there only to patch it would cost every process that
never uses it (about 1 s for the v1 trainer's modules). :func:`patch_on_import` instead registers a finder on
``sys.meta_path`` that lets the normal finders locate the module, runs its code, then applies the patch; a module
already imported is patched at once.
"""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any, Callable

Patch = Callable[[Any], None]


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself; when ``module_name`` is imported, runs its loader, then ``patch(module)``."""

    def __init__(self, module_name: str, patch: Patch):
        self.module_name = module_name
        self.patch = patch

    def find_spec(self, fullname, path, target=None):
        if fullname != self.module_name:
            return None
        sys.meta_path.remove(self)  # let the normal finders locate it, once
        try:
            from importlib.util import find_spec

            spec = find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        exec_module, patch = spec.loader.exec_module, self.patch

        def exec_and_patch(module):
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def patch_on_import(module_name: str, patch: Patch) -> None:
    """Apply ``patch(module)`` to ``module_name`` now if it is imported, else right after its import.

    One hook per module name: a second call for the same name (the plugin loading twice) adds nothing. ``patch``
    must be idempotent, since the module may also be imported before the hook exists in some other way.
    """
    if module_name in sys.modules:
        patch(sys.modules[module_name])
    elif not any(isinstance(f, _PatchOnImport) and f.module_name == module_name for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport(module_name, patch))
