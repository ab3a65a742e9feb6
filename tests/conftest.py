"""Settings every test file shares."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def full_float32_on_gpus():
    """Compare with cuDNN in full float32.

    On Ampere and newer GPUs cuDNN's recurrent layers use TF32 matmuls unless told not to (the
    default of ``torch.backends.cudnn.allow_tf32`` is True), which moves torch.nn's outputs by
    about 1e-4 and makes every float32 comparison with it fail. CPU runs are unaffected.
    """
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
