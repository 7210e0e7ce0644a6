"""mmquant: discrete and joint image-text representation learning (OptVQ, MXQ-VAE, LAViTeR, jWAE), Hub-compatible.

``import mmquant`` registers every model with transformers' Auto classes, so ``AutoModel.from_pretrained(path)``
works without ``trust_remote_code``, and plugs the hub's card publisher into the models' ``push_to_hub`` (the
package root is the one place that wires the layers together). Training dependencies (accelerate, tqdm,
matplotlib) and diffusers are imported only by the code that needs them.
"""

from .hub.publish import publish_folder as _publish_folder
from .modeling_outputs import VQAutoencoderOutput
from .models.auto import register_auto_classes
from .models.caption_mnist_judge import CaptionMnistJudgeConfig, CaptionMnistJudgeModel
from .models.jwae import JWAEConfig, JWAEModel, JWAEPreTrainedModel
from .models.laviter import LaviterConfig, LaviterModel, LaviterPreTrainedModel
from .models.modeling_utils import set_card_publisher as _set_card_publisher
from .models.mxqvae import (
    MXQVAEConfig,
    MXQVAEModel,
    MXQVAEPreTrainedModel,
    MXQVAEPriorConfig,
    MXQVAEPriorForCausalLM,
)
from .models.optvq import OptVQConfig, OptVQModel, OptVQPreTrainedModel
from .models.registry import create_model, get_config, list_models
from .quantizers import (
    BaseQuantizer,
    CodebookUsage,
    QuantizerOutput,
    ResidualQuantizer,
    SinkhornQuantizer,
    VectorQuantizer,
    build_quantizer,
)

__version__ = "0.1.0.dev0"

register_auto_classes()
_set_card_publisher(_publish_folder)  # model.push_to_hub uploads with the generated card (models sit below the hub)

__all__ = [
    "BaseQuantizer",
    "CaptionMnistJudgeConfig",
    "CaptionMnistJudgeModel",
    "CodebookUsage",
    "JWAEConfig",
    "JWAEModel",
    "JWAEPreTrainedModel",
    "LaviterConfig",
    "LaviterModel",
    "LaviterPreTrainedModel",
    "MXQVAEConfig",
    "MXQVAEModel",
    "MXQVAEPipeline",
    "MXQVAEPreTrainedModel",
    "MXQVAEPriorConfig",
    "MXQVAEPriorForCausalLM",
    "OptVQConfig",
    "OptVQDiffusersModel",
    "OptVQModel",
    "OptVQPreTrainedModel",
    "QuantizerOutput",
    "ResidualQuantizer",
    "SinkhornQuantizer",
    "VQAutoencoderOutput",
    "VectorQuantizer",
    "build_quantizer",
    "create_model",
    "get_config",
    "list_models",
]


# submodules reachable as attributes after `import mmquant` (imported on first use: `import mmquant` stays fast)
_LAZY_SUBMODULES = ("data", "hub", "losses", "metrics", "modules", "pipelines", "quantizers", "training", "zoo")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    # diffusers is heavy to import: load the diffusers wrapper only when it is asked for
    if name == "OptVQDiffusersModel":
        from .models.optvq.diffusers_optvq import OptVQDiffusersModel

        return OptVQDiffusersModel
    if name == "MXQVAEPipeline":
        from .pipelines import MXQVAEPipeline

        return MXQVAEPipeline
    raise AttributeError(f"module 'mmquant' has no attribute {name!r}")
