"""Tests for mmlib.sizing.cuda_emulation: CUDA's autocast policy and attention kernels on CPU."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch._subclasses.fake_tensor import FakeTensorMode

from mmlib.sizing.cuda_emulation import (
    CUDA_FP32,
    CUDA_FP32_APPEND_DTYPE,
    CUDA_FP32_SET_OPT_DTYPE,
    CUDA_LOWER_PRECISION_FP,
    CUDA_PROMOTE,
    cuda_attention_backend,
    cuda_behaviour,
)

# Registered for AutocastCUDA but not emulated: a refusal (binary_cross_entropy is unsafe under
# autocast), CUDA-only kernels a CPU step never reaches, and one linear-algebra op.
NOT_EMULATED = {
    "binary_cross_entropy",
    "_cudnn_rnn",
    "cudnn_convolution",
    "cudnn_convolution_transpose",
    "linalg_matrix_sqrth",
}


def _output_dtypes() -> dict[str, torch.dtype]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(2, 8, 6, 6, generator=generator)
    weight = torch.randn(8, 8, 3, 3, generator=generator)
    rows = torch.randn(3, 8, generator=generator)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        conv = F.conv2d(images, weight)
        linear = F.linear(rows, torch.randn(4, 8, generator=generator))
        return {
            "conv2d": conv.dtype,
            "group_norm": F.group_norm(conv, 2).dtype,
            "linear": linear.dtype,
            "layer_norm": F.layer_norm(linear, (4,)).dtype,
            "softmax": linear.softmax(-1).dtype,
            "sum": linear.sum().dtype,
            "cross_entropy": F.cross_entropy(linear, torch.tensor([0, 1, 2])).dtype,
            "mse_loss": F.mse_loss(linear, torch.zeros(3, 4)).dtype,
        }


def test_ops_get_cudas_output_dtypes_inside_and_the_cpus_after() -> None:
    bf16, fp32 = torch.bfloat16, torch.float32
    cuda = {
        "conv2d": bf16,
        "group_norm": fp32,
        "linear": bf16,
        "layer_norm": fp32,
        "softmax": fp32,
        "sum": fp32,
        "cross_entropy": fp32,  # composite: log_softmax (fp32) then nll_loss (fp32)
        "mse_loss": fp32,
    }
    with cuda_behaviour():
        assert _output_dtypes() == cuda
    with FakeTensorMode(), cuda_behaviour():
        assert _output_dtypes() == cuda
    # Leaving the context restores CPU autocast, which keeps these in bf16.
    after = _output_dtypes()
    assert after["group_norm"] == after["layer_norm"] == after["softmax"] == bf16


def test_the_lists_are_the_installed_torchs_autocast_cuda_registrations() -> None:
    listed = {
        *CUDA_LOWER_PRECISION_FP,
        *CUDA_FP32,
        *CUDA_FP32_SET_OPT_DTYPE,
        *CUDA_FP32_APPEND_DTYPE,
        *CUDA_PROMOTE,
    }
    # Only aten's: other libraries register their own ops once imported (torchvision's nms,
    # roi_align, ... once an earlier test imported torchvision.ops); the model uses none of them.
    registered = {
        name.removeprefix("aten::")
        for name in torch._C._dispatch_get_registrations_for_dispatch_key("AutocastCUDA")
        if name.startswith("aten::")
    }
    assert registered - listed == NOT_EMULATED
    assert listed <= registered


def _saved_by_attention(mask: Tensor | None, emulate: bool) -> list[tuple[torch.dtype, tuple]]:
    """Dtype and shape of what autograd saves for one bf16 attention call on fake tensors."""
    saved: list[tuple[torch.dtype, tuple]] = []

    def pack(tensor: Tensor) -> Tensor:
        saved.append((tensor.dtype, tuple(tensor.shape)))
        return tensor

    with FakeTensorMode():
        query = torch.randn(2, 4, 40, 64, requires_grad=True)
        fake_mask = None if mask is None else torch.zeros(mask.shape, dtype=mask.dtype)
        context = cuda_behaviour() if emulate else torch.autocast("cpu", enabled=False)
        with context, torch.autocast("cpu", dtype=torch.bfloat16):
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
                F.scaled_dot_product_attention(query, query, query, fake_mask, dropout_p=0.1)
    return saved


def test_cuda_attention_saves_the_log_sum_exp_not_the_weights() -> None:
    weights_shape = (2, 4, 40, 40)
    # Memory-efficient attention (a mask): log-sum-exp padded to 32 rows (fp32), the mask.
    efficient = _saved_by_attention(torch.zeros(2, 1, 40, 40, dtype=torch.bool), emulate=True)
    assert (torch.float32, (2, 4, 64)) in efficient
    assert [shape for _, shape in efficient].count((2, 4, 40, 64)) == 4  # q, k, v, output
    assert all(shape != weights_shape for dtype, shape in efficient if dtype != torch.bfloat16)
    # Flash attention (no mask, bf16): log-sum-exp of one value per row (fp32).
    flash = _saved_by_attention(None, emulate=True)
    assert (torch.float32, (2, 4, 40)) in flash
    assert all(shape != weights_shape for _, shape in flash)
    # Without the emulation the CPU's attention saves the [L, S] weights.
    assert any(shape == weights_shape for _, shape in _saved_by_attention(None, emulate=False))


def test_the_backend_is_flash_only_for_half_precision_without_a_mask() -> None:
    half = torch.zeros(1, 1, 4, 64, dtype=torch.bfloat16)
    assert cuda_attention_backend(half, None) == "flash"
    assert cuda_attention_backend(half, torch.zeros(4, 4, dtype=torch.bool)) == "efficient"
    assert cuda_attention_backend(half.float(), None) == "efficient"
    assert cuda_attention_backend(torch.zeros(1, 1, 4, 512, dtype=torch.bfloat16), None) == (
        "efficient"
    )
