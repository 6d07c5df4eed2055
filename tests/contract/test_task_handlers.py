"""Every task has one handler whose hooks are all there, and every family is served by the
load test and the benchmark: adding a model never means editing a table keyed by task."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode

from vitrine.export.parity import sample_inputs
from vitrine.loadtest.bench import ADAPTERS
from vitrine.loadtest.payloads import CALLERS
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec
from vitrine.tasks import TASKS, Family, Task
from vitrine.training.architectures import build_architecture
from vitrine.training.config import CONFIG_DIR, load_config
from vitrine.training.hooks import TaskHooks, task_hooks
from vitrine.training.recipe import Recipe, parse_settings
from vitrine.training.uint8_wrapper import Uint8ImageModel

ALL_SPECS = pytest.mark.parametrize("spec", SPECS.values(), ids=lambda spec: spec.name)
TRAINED_SPECS = [spec for spec in SPECS.values() if not spec.weights_from]


@pytest.mark.parametrize("task", list(Task), ids=lambda task: task.value)
def test_every_task_has_a_handler_with_every_hook(task: Task) -> None:
    assert TASKS[task].task is task
    hooks = task_hooks(task)
    assert isinstance(hooks, TaskHooks)
    for field in dataclasses.fields(TaskHooks):
        hook = getattr(hooks, field.name)
        assert hook is None or callable(hook), f"{task.value}: {field.name} is not callable"
    assert callable(hooks.forward) and callable(hooks.evaluate) and callable(hooks.comparison)
    if TASKS[task].family is Family.EDITOR:  # an editor's demo shows a photo through it
        assert hooks.demo is not None, f"{task.value} has no demo case"


def test_every_family_has_a_load_test_payload_and_a_bench_adapter() -> None:
    assert set(CALLERS) == set(Family)
    assert set(ADAPTERS) == set(Family)


@pytest.mark.parametrize("spec", TRAINED_SPECS, ids=lambda spec: spec.name)
def test_every_trained_spec_has_a_recipe_whose_settings_parse_every_preset(
    spec: ModelSpec,
) -> None:
    choose = task_hooks(spec.task).recipe
    assert choose is not None, f"{spec.name} trains, but its task has no recipe"
    recipe = choose(spec)
    assert issubclass(recipe, Recipe)
    presets = _presets(spec.name)
    assert {"full", "smoke"} <= presets
    for preset in presets:
        config = load_config(spec.name, preset)
        parse_settings(recipe.settings_type, config.recipe, f"{spec.name} {preset}")


def _presets(name: str) -> set[str]:
    import tomllib

    return set(tomllib.loads((CONFIG_DIR / f"{name}.toml").read_text())["presets"])


@pytest.mark.parametrize("spec", TRAINED_SPECS, ids=lambda spec: spec.name)
def test_a_misspelt_recipe_key_is_refused(spec: ModelSpec) -> None:
    choose = task_hooks(spec.task).recipe
    assert choose is not None
    config = load_config(spec.name, "smoke")
    with pytest.raises(ValueError, match="unknown \\[recipe\\] keys \\['dice_wieght'\\]"):
        parse_settings(choose(spec).settings_type, {**config.recipe, "dice_wieght": 1.0}, spec.name)


_FACTORIES = {
    torch.arange,
    torch.empty,
    torch.eye,
    torch.full,
    torch.linspace,
    torch.ones,
    torch.rand,
    torch.randint,
    torch.randn,
    torch.tensor,
    torch.zeros,
}


class _FactoryWatch(TorchFunctionMode):
    """Records tensor factories called without a device inside a forward pass. Scalars are
    host-side decisions (StyleGAN's mixing draw) and allowed."""

    def __init__(self) -> None:
        super().__init__()
        self.undeviced: list[str] = []

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if func in _FACTORIES and kwargs.get("device") is None and result.dim() > 0:
            self.undeviced.append(func.__name__)
        return result


@ALL_SPECS
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_a_forward_makes_every_tensor_on_its_inputs_device(spec: ModelSpec, mode: str) -> None:
    """On the CPU, the proxy for "runs on CUDA": a tensor made without a device lands on the
    CPU and meets the GPU's tensors (as the matte U-Net's resize matrices once did)."""
    torch.manual_seed(0)
    model = build_architecture(spec.architecture, spec.arch_kwargs)
    served = Uint8ImageModel(model, spec.task).train(mode == "train")
    shape = (2, *spec.profile.min[1:])
    feeds = [torch.from_numpy(feed) for feed in sample_inputs(spec, shape).values()]
    watch = _FactoryWatch()
    with torch.no_grad(), watch:
        served(*feeds)
    assert watch.undeviced == [], f"{spec.name} makes tensors without a device"
