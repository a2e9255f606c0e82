"""CUDA's autocast policy and attention backend, emulated on CPU tensors (fake ones included).

The memory estimate (`mmlib.sizing.memory`) runs the training step with CPU kernels on fake tensors,
because on a machine without a GPU `torch.autocast("cuda")` switches itself off and backward on
fake CUDA tensors fails. CPU autocast and CUDA autocast differ (CUDA runs group_norm,
layer_norm, softmax, the losses and more in fp32, so a bf16 conv output gets an fp32 copy that
group_norm saves for backward), and so do the attention kernels (on a GPU, flash and
memory-efficient SDPA save the log-sum-exp, not the attention weights). Inside
`cuda_behaviour()` the CPU behaves as CUDA does for both.

How: Python kernels are registered for the `AutocastCPU` dispatch key (where CPU autocast's own
casts happen, above autograd, so autograd saves what CUDA's autocast would make it save) and for
`AutogradCPU` of `scaled_dot_product_attention`; leaving the context removes them, which
restores PyTorch's own kernels.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor
from torch.utils._pytree import tree_leaves, tree_map

# CUDA's autocast op lists, as torch 2.14 defines them in aten/src/ATen/autocast_mode.h
# (AT_FORALL_LOWER_PRECISION_FP, AT_FORALL_FP32, AT_FORALL_FP32_SET_OPT_DTYPE,
# AT_FORALL_DIFFERENT_REDISPATCH_SIGNATURE, AT_FORALL_PROMOTE), which
# aten/src/ATen/autocast_mode.cpp registers for the AutocastCUDA key; documented at
# https://pytorch.org/docs/stable/amp.html#cuda-ops-that-can-autocast-to-float16 .
# Names are "op.overload" ("op" alone for the default overload).
CUDA_LOWER_PRECISION_FP = (
    "_convolution.deprecated _convolution conv1d conv2d conv3d conv_tbc conv_transpose1d "
    "conv_transpose2d.input conv_transpose3d.input convolution prelu addmm addmv addr matmul "
    "einsum mm mv linalg_vecdot linear addbmm baddbmm bmm chain_matmul linalg_multi_dot "
    "_thnn_fused_lstm_cell _thnn_fused_gru_cell lstm_cell gru_cell rnn_tanh_cell rnn_relu_cell "
    "_scaled_dot_product_flash_attention scaled_dot_product_attention"
).split()
CUDA_FP32 = (
    "acos asin cosh erfinv exp expm1 log log10 log2 log1p reciprocal rsqrt sinh tan "
    "pow.Tensor_Scalar pow.Tensor_Tensor pow.Scalar softplus layer_norm native_layer_norm "
    "rms_norm group_norm frobenius_norm.dim nuclear_norm nuclear_norm.dim cosine_similarity "
    "poisson_nll_loss cosine_embedding_loss nll_loss nll_loss2d hinge_embedding_loss kl_div "
    "l1_loss smooth_l1_loss huber_loss mse_loss margin_ranking_loss multilabel_margin_loss "
    "soft_margin_loss triplet_margin_loss multi_margin_loss binary_cross_entropy_with_logits "
    "dist pdist cdist renorm logsumexp upsample_nearest1d _upsample_nearest_exact1d "
    "upsample_nearest2d _upsample_nearest_exact2d upsample_nearest3d _upsample_nearest_exact3d "
    "upsample_linear1d upsample_bilinear2d _upsample_bilinear2d_aa upsample_trilinear3d "
    "upsample_bicubic2d _upsample_bicubic2d_aa"
).split()
CUDA_FP32_SET_OPT_DTYPE = (
    "prod prod.dim_int softmax.int log_softmax.int cumprod cumsum linalg_vector_norm "
    "linalg_matrix_norm linalg_matrix_norm.str_ord sum sum.dim_IntList"
).split()
# norm.Scalar and norm.ScalarOpt_dim: redispatched to their "_dtype" overloads with fp32.
CUDA_FP32_APPEND_DTYPE = {
    "norm.Scalar": "ScalarOpt_dtype",
    "norm.ScalarOpt_dim": "ScalarOpt_dim_dtype",
}
CUDA_PROMOTE = (
    "addcdiv addcmul atan2 bilinear cross dot vdot grid_sampler index_put tensordot scatter_add"
).split()
# CPU autocast's own lower-precision ops (autocast_mode.cpp, TORCH_LIBRARY_IMPL(aten,
# AutocastCPU)) that CUDA also runs in lower precision: their CPU kernels are kept, so that
# autocast's cache of cast weights works as on CUDA.
CPU_AND_CUDA_LOWER_PRECISION_FP = (
    "_convolution.deprecated conv1d conv2d conv3d conv_tbc conv_transpose1d "
    "conv_transpose2d.input conv_transpose3d.input prelu addmm matmul mm linalg_vecdot linear "
    "addbmm baddbmm bmm"
).split()

# SDPA on CUDA (aten/src/ATen/native/transformers/cuda/sdp_utils.cpp, torch 2.14): backends
# are tried in the order flash, memory-efficient, math (cuDNN attention after them). Flash
# needs fp16/bf16 and no attention mask; memory-efficient takes fp32 too and an additive mask,
# which attention.cpp's preprocess_mask pads to MEM_EFFICIENT_ALIGNMENT (mem_eff_alignment).
FLASH_DTYPES = (torch.float16, torch.bfloat16)
FLASH_MAX_HEAD_DIM = 256
MEM_EFFICIENT_ALIGNMENT = 8

_AUTOCAST_CPU = torch._C.DispatchKeySet(torch._C.DispatchKey.AutocastCPU)
_AFTER_AUTOCAST_CPU = torch._C._dispatch_keyset_full_after(torch._C.DispatchKey.AutocastCPU)


def _op(name: str) -> torch._ops.OpOverload:
    packet, _, overload = name.partition(".")
    return getattr(getattr(torch.ops.aten, packet), overload or "default")


def _eligible(value: Any) -> bool:
    """What autocast casts: floating-point tensors other than float64 (is_autocast_eligible)."""
    return isinstance(value, Tensor) and value.is_floating_point() and value.dtype != torch.float64


def _cast_all(values: Any, dtype: torch.dtype) -> Any:
    return tree_map(lambda v: v.to(dtype) if _eligible(v) and v.dtype != dtype else v, values)


def _below_autocast(op: torch._ops.OpOverload, args: Any, kwargs: Any) -> Any:
    with torch._C._ExcludeDispatchKeyGuard(_AUTOCAST_CPU):
        return op(*args, **kwargs)


def _lower_kernel(op: torch._ops.OpOverload) -> Callable[..., Any]:
    """lower_precision_fp for an op CPU autocast leaves alone. Its casts are not cached as
    autocast caches weight casts; the model's weighted ops (conv, linear, matmul) keep CPU
    autocast's own kernels, which cache as CUDA's do."""

    def kernel(*args: Any, **kwargs: Any) -> Any:
        dtype = torch.get_autocast_dtype("cpu")
        return _below_autocast(op, _cast_all(args, dtype), _cast_all(kwargs, dtype))

    return kernel


def _fp32_kernel(op: torch._ops.OpOverload) -> Callable[..., Any]:
    def kernel(*args: Any, **kwargs: Any) -> Any:
        return _below_autocast(op, _cast_all(args, torch.float32), _cast_all(kwargs, torch.float32))

    return kernel


def _set_opt_dtype_kernel(op: torch._ops.OpOverload) -> Callable[..., Any]:
    """fp32_set_opt_dtype: a floating first argument runs with dtype=float32 unless the caller
    chose a dtype (no copy of the input is made; the kernel accumulates and writes fp32)."""
    position = next(i for i, a in enumerate(op._schema.arguments) if a.name == "dtype")

    def kernel(*args: Any, **kwargs: Any) -> Any:
        if _eligible(args[0]):
            if position < len(args):
                if args[position] is None:
                    args = (*args[:position], torch.float32, *args[position + 1 :])
            elif kwargs.get("dtype") is None:
                kwargs = {**kwargs, "dtype": torch.float32}
        return _below_autocast(op, args, kwargs)

    return kernel


def _append_dtype_kernel(op: torch._ops.OpOverload, target: str) -> Callable[..., Any]:
    """fp32_append_dtype: a floating input runs as the `target` overload with dtype=float32."""
    with_dtype = getattr(torch.ops.aten.norm, target)
    defaults = [a.default_value for a in op._schema.arguments if not a.kwarg_only]

    def kernel(*args: Any, **kwargs: Any) -> Any:
        if not _eligible(args[0]):
            return _below_autocast(op, args, kwargs)
        full = (*args, *defaults[len(args) :])
        return _below_autocast(with_dtype, full, {**kwargs, "dtype": torch.float32})

    return kernel


def _promote_kernel(op: torch._ops.OpOverload) -> Callable[..., Any]:
    def kernel(*args: Any, **kwargs: Any) -> Any:
        dtypes = [t.dtype for t in tree_leaves((args, kwargs)) if _eligible(t)]
        if not dtypes:
            return _below_autocast(op, args, kwargs)
        widest = dtypes[0]
        for dtype in dtypes[1:]:
            widest = torch.promote_types(widest, dtype)
        return _below_autocast(op, _cast_all(args, widest), _cast_all(kwargs, widest))

    return kernel


def _fallthrough_kernel(op: torch._ops.OpOverload) -> Callable[..., Any]:
    """An op CPU autocast casts but CUDA autocast does not: it goes on below autocast as it is,
    while the ops it decomposes into meet autocast again (as CUDA's fallthrough does)."""

    def kernel(keyset: torch._C.DispatchKeySet, *args: Any, **kwargs: Any) -> Any:
        return op.redispatch(keyset & _AFTER_AUTOCAST_CPU, *args, **kwargs)

    return kernel


def cuda_autocast_kernels() -> dict[str, Callable[..., Any]]:
    """For each op whose CPU autocast differs from CUDA's: the kernel that acts as CUDA's."""
    kernels: dict[str, Callable[..., Any]] = {}
    for name in CUDA_LOWER_PRECISION_FP:
        if name not in CPU_AND_CUDA_LOWER_PRECISION_FP:
            kernels[name] = _lower_kernel(_op(name))
    kernels["scaled_dot_product_attention"] = _sdpa_autocast_kernel
    for name in CUDA_FP32:
        kernels[name] = _fp32_kernel(_op(name))
    for name in CUDA_FP32_SET_OPT_DTYPE:
        kernels[name] = _set_opt_dtype_kernel(_op(name))
    for name, target in CUDA_FP32_APPEND_DTYPE.items():
        kernels[name] = _append_dtype_kernel(_op(name), target)
    for name in CUDA_PROMOTE:
        kernels[name] = _promote_kernel(_op(name))
    return kernels


def cpu_only_autocast_ops() -> list[str]:
    """The ops CPU autocast casts and CUDA autocast leaves alone (cat, cross_entropy_loss, ...)."""
    cuda = set(cuda_autocast_kernels()) | set(CPU_AND_CUDA_LOWER_PRECISION_FP)
    registered = torch._C._dispatch_get_registrations_for_dispatch_key("AutocastCPU")
    names = [name.removeprefix("aten::") for name in registered if name.startswith("aten::")]
    return sorted(name for name in names if name not in cuda)


# ---------------------------------------------------------------- attention


def cuda_attention_backend(query: Tensor, attn_mask: Tensor | None) -> str:
    """The SDPA backend CUDA picks for these inputs in training: "flash" or "efficient"."""
    flash = (
        attn_mask is None
        and query.dtype in FLASH_DTYPES
        and query.shape[-1] <= FLASH_MAX_HEAD_DIM
        and query.shape[-1] % 8 == 0
    )
    return "flash" if flash else "efficient"


def _aligned(mask: Tensor) -> bool:
    """attention.cpp's aligned_tensor: every stride but the last a multiple of the alignment."""
    strides = mask.stride()
    return strides[-1] == 1 and all(s % MEM_EFFICIENT_ALIGNMENT == 0 for s in strides[:-1])


def _efficient_attention_bias(attn_mask: Tensor, query: Tensor, key: Tensor) -> Tensor:
    """The mask as attention.cpp hands it to memory-efficient attention: a boolean mask becomes
    0/-inf in the query's dtype (convert_boolean_attn_mask); an unaligned one is padded by
    pad_bias and sliced back (preprocess_mask); then expanded to [B, H, L, S] (a view)."""
    if attn_mask.dtype == torch.bool:
        attn_mask = torch.zeros(
            attn_mask.shape, dtype=query.dtype, device=attn_mask.device
        ).masked_fill_(attn_mask.logical_not(), float("-inf"))
    if not _aligned(attn_mask):
        columns = attn_mask.shape[-1]
        padding = MEM_EFFICIENT_ALIGNMENT - columns % MEM_EFFICIENT_ALIGNMENT
        attn_mask = torch.nn.functional.pad(attn_mask, (0, padding))[..., :columns]
    return attn_mask.expand(*query.shape[:-1], key.shape[-2])


def cuda_scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """`F.scaled_dot_product_attention` through the kernel CUDA would run: flash or
    memory-efficient attention (each saves q, k, v, the output and the log-sum-exp, never the
    [L, S] attention weights)."""
    if enable_gqa:
        raise ValueError("enable_gqa=True: the CUDA attention emulation does not cover it")
    if cuda_attention_backend(query, attn_mask) == "flash":
        return torch.ops.aten._scaled_dot_product_flash_attention(
            query, key, value, dropout_p, is_causal, scale=scale
        )[0]
    bias = None if attn_mask is None else _efficient_attention_bias(attn_mask, query, key)
    return torch.ops.aten._scaled_dot_product_efficient_attention(
        query, key, value, bias, True, dropout_p, is_causal, scale=scale
    )[0]


def _sdpa_autocast_kernel(*args: Any, **kwargs: Any) -> Tensor:
    dtype = torch.get_autocast_dtype("cpu")
    with torch._C._ExcludeDispatchKeyGuard(_AUTOCAST_CPU):
        return cuda_scaled_dot_product_attention(
            *_cast_all(args, dtype), **_cast_all(kwargs, dtype)
        )


@contextmanager
def cuda_behaviour() -> Iterator[None]:
    """Inside: CPU autocast casts as CUDA autocast does, and SDPA runs CUDA's backend."""
    library = torch.library.Library("aten", "IMPL")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Overriding a previously registered")
            for name, kernel in cuda_autocast_kernels().items():
                library.impl(name, kernel, "AutocastCPU")
            for name in cpu_only_autocast_ops():
                library.impl(name, _fallthrough_kernel(_op(name)), "AutocastCPU", with_keyset=True)
            library.impl(
                "scaled_dot_product_attention", cuda_scaled_dot_product_attention, "AutogradCPU"
            )
        yield
    finally:
        library._destroy()
