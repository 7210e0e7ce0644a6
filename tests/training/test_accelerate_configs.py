"""The shipped ``accelerate launch`` configs load with accelerate's own parser and say what the README says."""

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "examples" / "accelerate_configs"
EXPECTED = {  # file: (distributed type, processes, machines, on the CPU)
    "cpu_2_processes.yaml": (DistributedType.MULTI_GPU, 2, 1, True),
    "multi_gpu.yaml": (DistributedType.MULTI_GPU, 8, 1, False),
    "multi_node.yaml": (DistributedType.MULTI_GPU, 16, 2, False),
    "fsdp.yaml": (DistributedType.FSDP, 8, 1, False),
}


def test_every_config_is_listed():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_loads_and_is_named_in_the_readme(name):
    config = load_config_from_file(str(CONFIGS / name))
    assert (config.distributed_type, config.num_processes, config.num_machines, config.use_cpu) == EXPECTED[name]
    assert f"examples/accelerate_configs/{name}" in (ROOT / "README.md").read_text()
    if EXPECTED[name][0] == DistributedType.FSDP:
        assert config.fsdp_config["fsdp_version"] == 2
