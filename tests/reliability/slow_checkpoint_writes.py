"""Run a training script with each file of a checkpoint written slowly, so that a kill can land mid-write.

    python slow_checkpoint_writes.py DELAY_S SCRIPT [ARGS...]

Test instrumentation only (the library has no such hook): the checkpoint writer's ``save_file`` (optimizer, RNG
and extras tensors) and the model's ``save_pretrained`` sleep ``DELAY_S`` before and after writing; what is written
is unchanged.
"""

import runpy
import sys
import time

from mmquant.training import checkpointing


def _slowly(write):
    def slow(*args, **kwargs):
        time.sleep(DELAY)
        result = write(*args, **kwargs)
        time.sleep(DELAY)
        return result

    return slow


if __name__ == "__main__":
    DELAY = float(sys.argv[1])
    checkpointing.save_file = _slowly(checkpointing.save_file)
    original_unwrap = checkpointing._unwrap

    def _unwrap(model):
        model = original_unwrap(model)
        if not getattr(model.save_pretrained, "_slow", False):
            model.save_pretrained = _slowly(model.save_pretrained)
            model.save_pretrained._slow = True
        return model

    checkpointing._unwrap = _unwrap
    sys.argv = sys.argv[2:]
    runpy.run_path(sys.argv[0], run_name="__main__")
