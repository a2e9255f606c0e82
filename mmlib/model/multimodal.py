"""`MultimodalModel`: image encoder and decoder, text encoder, caption decoder, and decoding.

The image encoder gives a latent and a spatial feature map. The latent feeds the image decoder
(reconstruction); latent and feature map together become the image memory, which the caption
decoder (a causal transformer) cross-attends to and which an attention pool summarises into the
image embedding, compared with the text encoder's embedding of the caption (CLIP-style). At
the "seed-large" preset the image encoder, image decoder and caption decoder have the sizes of
the engraving model this library replaces (docs/coming-from-train-production.md); see
`parameter_summary`.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple, TypedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmlib.config import Config
from mmlib.tokens import END_ID, PAD_ID, SPECIAL_TOKENS, START_ID

MAX_LEVELS = 5
MIN_FEATURE_SIZE = 4
CHANNEL_MULTIPLIERS = (1, 2, 4, 8, 8)  # 64-128-256-512-512 at base_channels 64 (seed-large)
LOGIT_SCALE_INIT = math.log(1 / 0.07)  # CLIP's initial temperature
LOGIT_SCALE_MAX = 100.0
# The widest beam `generate` searches: each beam holds a caption and its scores; 64 is past any
# gain in caption quality, and a width of 100,000 asked for gigabytes.
MAX_BEAM_WIDTH = 64
EMBEDDING_INIT_STD = 0.02

DecodeMethod = Literal["greedy", "beam"]


def encoder_levels(image_size: int) -> int:
    """Number of stride-2 levels: halve while the map stays an even split >= 4 pixels, at most 5.

    512 -> 5 levels (16x16 map, seed-large's), 256 -> 5 (8x8), 128 -> 5 (4x4),
    64 -> 4 (4x4), 32 -> 3 (4x4), 16 -> 2 (4x4), 48 -> 3 (6x6).
    """
    levels, size = 0, image_size
    while levels < MAX_LEVELS and size % 2 == 0 and size // 2 >= MIN_FEATURE_SIZE:
        size //= 2
        levels += 1
    return levels


def encoder_channels(config: Config) -> list[int]:
    """Output channels of each encoder level: base_channels x (1, 2, 4, 8, 8)[:levels]."""
    levels = encoder_levels(config.image_size)
    return [config.base_channels * m for m in CHANNEL_MULTIPLIERS[:levels]]


def _group_norm(channels: int) -> nn.GroupNorm:
    # No batch statistics: results do not depend on the per-process batch under DDP.
    return nn.GroupNorm(math.gcd(32, channels), channels)


def _length_penalty(lengths: Tensor, alpha: float) -> Tensor:
    """GNMT length penalty ((5 + n) / 6) ** alpha."""
    return ((5.0 + lengths) / 6.0) ** alpha


class _LayerOptions(TypedDict):
    """Keyword arguments of `nn.TransformerEncoderLayer` and `nn.TransformerDecoderLayer`."""

    nhead: int
    dim_feedforward: int
    dropout: float
    activation: str
    batch_first: bool
    norm_first: bool


def _layer_options(config: Config) -> _LayerOptions:
    """The options every transformer layer shares: heads, feed-forward, dropout, pre-norm GELU."""
    return {
        "nhead": config.num_heads,
        "dim_feedforward": config.feedforward_dim,
        "dropout": config.dropout,
        "activation": "gelu",
        "batch_first": True,
        "norm_first": True,
    }


class ModelOutput(NamedTuple):
    """What one teacher-forced forward pass returns.

    `caption_logits[:, t]` predicts `tokens[:, t + 1]`. Both embeddings are L2-normalised
    (the alignment loss normalises again, harmlessly); `logit_scale` is the clamped CLIP
    temperature exp(log_logit_scale).
    """

    reconstruction: Tensor  # [B, C, H, W] in [-1, 1]
    caption_logits: Tensor  # [B, L - 1, vocab_size]
    image_embedding: Tensor  # [B, embedding_dim], unit norm, pooled from the image memory
    text_embedding: Tensor  # [B, embedding_dim], unit norm
    latent: Tensor  # [B, latent_dim]
    logit_scale: Tensor  # scalar
    # With perceptual_loss_weight > 0: the encoder's last feature map of the images (detached)
    # and of the reconstructions (through fixed encoder weights).
    image_features: Tensor | None = None
    reconstruction_features: Tensor | None = None


class ImageEncoder(nn.Module):
    """CNN: 4x4 stride-2 convs with GroupNorm and ReLU, then a 1x1 conv, flatten and an MLP to
    the latent."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        channels = encoder_channels(config)
        self.image_channels = config.image_channels
        self.image_size = config.image_size
        self.feature_channels = channels[-1]
        self.feature_size = config.image_size >> len(channels)
        blocks: list[nn.Module] = []
        for c_in, c_out in zip([config.image_channels, *channels[:-1]], channels, strict=True):
            blocks += [nn.Conv2d(c_in, c_out, 4, 2, 1), _group_norm(c_out), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*blocks)
        width = self.feature_channels
        cells = self.feature_size**2
        # The head keeps where things are: a 1x1 conv narrows the map to ~4 x latent_dim values,
        # which are flattened. A global average pool would make the latent nearly position-free,
        # and the image decoder could not put a subject back where it was.
        reduced = min(width, max(1, 4 * config.latent_dim // cells))
        self.head = nn.Sequential(
            nn.Conv2d(width, reduced, 1),
            nn.ReLU(inplace=True),
            nn.Flatten(),
            nn.Linear(reduced * cells, width),
            nn.ReLU(inplace=True),
            nn.Linear(width, config.latent_dim),
        )

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """The latent [B, latent_dim] and the last feature map [B, C, h, w]."""
        expected = (self.image_channels, self.image_size, self.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"images: expected shape [B, {', '.join(map(str, expected))}], "
                f"got {list(images.shape)}"
            )
        features = self.convs(images)
        return self.head(features), features


class ImageDecoder(nn.Module):
    """MLP from the latent to the smallest feature map, then transposed convs back to the image."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        channels = encoder_channels(config)[::-1]
        self.width = channels[0]
        self.start_size = config.image_size >> len(channels)
        self.mlp = nn.Sequential(
            nn.Linear(config.latent_dim, self.width),
            nn.ReLU(inplace=True),
            nn.Linear(self.width, self.width * self.start_size**2),
            nn.ReLU(inplace=True),
        )
        outs = [*channels[1:], config.image_channels]
        blocks: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(channels, outs, strict=True)):
            blocks.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1))
            if i < len(outs) - 1:
                blocks += [_group_norm(c_out), nn.ReLU(inplace=True)]
        blocks.append(nn.Tanh())
        self.deconvs = nn.Sequential(*blocks)

    def forward(self, latent: Tensor) -> Tensor:
        """The reconstruction [B, C, H, W] in [-1, 1]."""
        hidden = self.mlp(latent).view(-1, self.width, self.start_size, self.start_size)
        return self.deconvs(hidden)


class TokenEmbedding(nn.Module):
    """Token plus learned position embeddings, with dropout."""

    def __init__(self, vocab_size: int, width: int, max_length: int, dropout: float) -> None:
        super().__init__()
        self.max_length = max_length
        self.token = nn.Embedding(vocab_size, width, padding_idx=PAD_ID)
        self.position = nn.Embedding(max_length, width)
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.token.weight, std=EMBEDDING_INIT_STD)
        nn.init.normal_(self.position.weight, std=EMBEDDING_INIT_STD)
        with torch.no_grad():
            self.token.weight[PAD_ID].zero_()

    def forward(self, tokens: Tensor) -> Tensor:
        """[B, L] token ids to [B, L, width]."""
        length = tokens.shape[1]
        if length > self.max_length:
            raise ValueError(
                f"tokens: {length} positions, but max_caption_length is {self.max_length}"
            )
        positions = torch.arange(length, device=tokens.device)
        return self.dropout(self.token(tokens) + self.position(positions))


class TextEncoder(nn.Module):
    """Order-aware caption encoder: embeddings, a transformer encoder, mean over non-pad tokens."""

    def __init__(self, config: Config, vocab_size: int) -> None:
        super().__init__()
        width = config.embedding_dim
        self.embed = TokenEmbedding(vocab_size, width, config.max_caption_length, config.dropout)
        layer = nn.TransformerEncoderLayer(width, **_layer_options(config))
        self.encoder = nn.TransformerEncoder(
            layer, config.text_encoder_layers, norm=nn.LayerNorm(width), enable_nested_tensor=False
        )

    def forward(self, tokens: Tensor) -> Tensor:
        """[B, L] token ids (with <START> and <END>) to a pooled [B, embedding_dim]."""
        padding = tokens == PAD_ID
        hidden = self.encoder(self.embed(tokens), src_key_padding_mask=padding)
        keep = (~padding).unsqueeze(-1).to(hidden.dtype)
        return (hidden * keep).sum(1) / keep.sum(1).clamp_min(1.0)


class CaptionDecoder(nn.Module):
    """Causal transformer decoder over caption tokens, cross-attending to image memory.

    Memory = `memory_tokens` tokens from an MLP on the latent (latent_dim -> the mean of
    latent_dim and embedding_dim -> memory_tokens x embedding_dim; 1024 -> 768 -> 4 x 512 at
    seed-large) plus one token per cell of the encoder's last feature map (projected to the
    width, with learned positions).
    """

    def __init__(
        self, config: Config, vocab_size: int, feature_channels: int, feature_size: int
    ) -> None:
        super().__init__()
        width = config.embedding_dim
        hidden = (config.latent_dim + width) // 2
        self.memory_tokens = config.memory_tokens
        self.width = width
        self.causal = config.causal_caption_mask
        self.latent_memory = nn.Sequential(
            nn.Linear(config.latent_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, config.memory_tokens * width),
        )
        self.spatial_memory = nn.Linear(feature_channels, width)
        self.spatial_position = nn.Parameter(
            torch.randn(feature_size * feature_size, width) * EMBEDDING_INIT_STD
        )
        self.memory_norm = nn.LayerNorm(width)
        self.embed = TokenEmbedding(vocab_size, width, config.max_caption_length, config.dropout)
        layer = nn.TransformerDecoderLayer(width, **_layer_options(config))
        self.decoder = nn.TransformerDecoder(layer, config.num_layers, norm=nn.LayerNorm(width))
        self.output = nn.Linear(width, vocab_size)

    def memory(self, latent: Tensor, features: Tensor) -> Tensor:
        """Cross-attention memory [B, memory_tokens + h*w, width]."""
        from_latent = self.latent_memory(latent).view(-1, self.memory_tokens, self.width)
        spatial = self.spatial_memory(features.flatten(2).transpose(1, 2)) + self.spatial_position
        return self.memory_norm(torch.cat([from_latent, spatial], dim=1))

    def forward(self, tokens: Tensor, memory: Tensor) -> Tensor:
        """Logits [B, L, vocab]: position t sees tokens[:, :t + 1] only (the causal mask), or
        every non-pad token when built with `causal_caption_mask=False`."""
        hidden = self.decoder(
            self.embed(tokens),
            memory,
            tgt_mask=self.causal_mask(tokens.shape[1], tokens.device) if self.causal else None,
            tgt_key_padding_mask=tokens == PAD_ID,
            tgt_is_causal=self.causal,
        )
        return self.output(hidden)

    @staticmethod
    def causal_mask(length: int, device: torch.device | None = None) -> Tensor:
        """BoolTensor [length, length]: True where query position i may not read key j (j > i)."""
        return torch.ones(length, length, dtype=torch.bool, device=device).triu(1)


class AttentionPool(nn.Module):
    """One learned query attending over a sequence: [B, N, width] -> [B, width]."""

    def __init__(self, width: int, num_heads: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, width) * EMBEDDING_INIT_STD)
        self.attention = nn.MultiheadAttention(width, num_heads, batch_first=True)

    def forward(self, sequence: Tensor) -> Tensor:
        """The attention-weighted summary of `sequence`."""
        query = self.query.expand(sequence.shape[0], -1, -1)
        return self.attention(query, sequence, sequence, need_weights=False)[0][:, 0]


class MultimodalModel(nn.Module):
    """Image autoencoder + caption decoder + text encoder, aligned in one embedding space.

    `vocab_size` is the real vocabulary size, `len(tokenizer)`; the output layer has exactly
    that many logits.
    """

    def __init__(self, config: Config, vocab_size: int) -> None:
        super().__init__()
        config.check_consistency()
        if vocab_size <= len(SPECIAL_TOKENS):
            raise ValueError(
                f"vocab_size={vocab_size}: must exceed the {len(SPECIAL_TOKENS)} special tokens "
                "(pass len(tokenizer) after build_vocab)"
            )
        self.vocab_size = vocab_size
        self.max_caption_length = config.max_caption_length
        self.matches_features = config.perceptual_loss_weight > 0
        self.image_encoder = ImageEncoder(config)
        self.image_decoder = ImageDecoder(config)
        self.text_encoder = TextEncoder(config, vocab_size)
        self.caption_decoder = CaptionDecoder(
            config,
            vocab_size,
            self.image_encoder.feature_channels,
            self.image_encoder.feature_size,
        )
        # The image embedding pools the caption memory rather than projecting the latent alone:
        # the memory's tokens per feature-map cell say where things are, which captions (and so
        # retrieval) depend on, and the caption decoder already learns to read them.
        self.image_pool = AttentionPool(config.embedding_dim, config.num_heads)
        self.image_projection = nn.Linear(config.embedding_dim, config.embedding_dim)
        self.text_projection = nn.Linear(config.embedding_dim, config.embedding_dim)
        self.log_logit_scale = nn.Parameter(torch.tensor(LOGIT_SCALE_INIT))

    # --- training ---
    def forward(self, images: Tensor, tokens: Tensor) -> ModelOutput:
        """Teacher forcing: feed `tokens[:, :-1]`, predict `tokens[:, 1:]`."""
        latent, features = self.image_encoder(images)
        memory = self.caption_decoder.memory(latent, features)
        reconstruction = self.image_decoder(latent)
        return ModelOutput(
            reconstruction=reconstruction,
            caption_logits=self.caption_decoder(tokens[:, :-1], memory),
            image_embedding=self._image_embedding(memory),
            text_embedding=self.encode_text(tokens),
            latent=latent,
            logit_scale=self.logit_scale,
            image_features=features.detach() if self.matches_features else None,
            reconstruction_features=(
                self._fixed_features(reconstruction) if self.matches_features else None
            ),
        )

    def _fixed_features(self, images: Tensor) -> Tensor:
        """The encoder's feature map of `images`, differentiable in the images only: the
        perceptual loss must shape the decoder, not move the encoder towards its outputs."""
        convs = self.image_encoder.convs
        fixed = {name: parameter.detach() for name, parameter in convs.named_parameters()}
        return torch.func.functional_call(convs, fixed, (images,))

    @property
    def logit_scale(self) -> Tensor:
        """CLIP temperature: exp(log_logit_scale), at most 100."""
        return self.log_logit_scale.exp().clamp(max=LOGIT_SCALE_MAX)

    @torch.no_grad()
    def reconstruct(self, images: Tensor) -> Tensor:
        """The image decoder's reconstruction [B, C, H, W] in [-1, 1] of images in [-1, 1]."""
        return self.image_decoder(self.image_encoder(images)[0])

    # --- retrieval ---
    def encode_image(self, images: Tensor) -> Tensor:
        """Unit-norm image embeddings [B, embedding_dim]."""
        return self._image_embedding(self.image_memory(images))

    def image_memory(self, images: Tensor, latent: Tensor | None = None) -> Tensor:
        """The caption decoder's memory of images; `latent` replaces the images' own latent."""
        own_latent, features = self.image_encoder(images)
        return self.caption_decoder.memory(own_latent if latent is None else latent, features)

    def _image_embedding(self, memory: Tensor) -> Tensor:
        return F.normalize(self.image_projection(self.image_pool(memory)), dim=-1)

    def encode_text(self, tokens: Tensor) -> Tensor:
        """Unit-norm caption embeddings [B, embedding_dim] from token ids [B, L]."""
        return F.normalize(self.text_projection(self.text_encoder(tokens)), dim=-1)

    # --- decoding ---
    @torch.no_grad()
    def generate(
        self,
        images: Tensor,
        max_length: int | None = None,
        method: DecodeMethod = "greedy",
        beam_width: int = 4,
        length_penalty: float = 0.6,
        latent: Tensor | None = None,
    ) -> Tensor:
        """Captions [B, L <= max_length] as token ids: <START>, words, <END>, then <PAD> only.

        A row without <END> ran to `max_length`. `latent` [B, latent_dim], when given, replaces
        the images' own latent (their spatial map is still read). Runs in eval mode (dropout
        off) and restores the previous mode. Beam search ranks hypotheses by log-probability /
        ((5 + n) / 6) ** length_penalty, n = generated tokens; beam_width=1 equals greedy.
        """
        max_length = self.max_caption_length if max_length is None else max_length
        if not 2 <= max_length <= self.max_caption_length:
            raise ValueError(
                f"max_length={max_length}: must be between 2 and {self.max_caption_length}"
            )
        if method not in ("greedy", "beam"):
            raise ValueError(f"method={method!r}: expected 'greedy' or 'beam'")
        if not 1 <= beam_width <= MAX_BEAM_WIDTH:
            raise ValueError(f"beam_width={beam_width}: must be from 1 to {MAX_BEAM_WIDTH}")
        was_training = self.training
        self.eval()
        try:
            memory = self.image_memory(images, latent)
            if method == "greedy":
                return self._greedy(memory, max_length)
            return self._beam(memory, max_length, beam_width, length_penalty)
        finally:
            self.train(was_training)

    def _next_log_probs(self, tokens: Tensor, memory: Tensor) -> Tensor:
        """Log-probabilities [N, vocab] of the token after each prefix (no KV cache)."""
        return self.caption_decoder(tokens, memory)[:, -1].float().log_softmax(-1)

    def _greedy(self, memory: Tensor, max_length: int) -> Tensor:
        batch = memory.shape[0]
        tokens = torch.full((batch, 1), START_ID, dtype=torch.long, device=memory.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=memory.device)
        for _ in range(max_length - 1):
            step = self._next_log_probs(tokens, memory).argmax(-1)
            step = step.masked_fill(finished, PAD_ID)
            tokens = torch.cat([tokens, step[:, None]], dim=1)
            finished |= step == END_ID
            if bool(finished.all()):
                break
        return tokens

    def _beam(self, memory: Tensor, max_length: int, width: int, alpha: float) -> Tensor:
        batch, device, vocab = memory.shape[0], memory.device, self.vocab_size
        memory = memory.repeat_interleave(width, dim=0)
        tokens = torch.full((batch * width, 1), START_ID, dtype=torch.long, device=device)
        scores = torch.full((batch, width), -math.inf, device=device)
        scores[:, 0] = 0.0  # one live hypothesis at the start, so beams do not duplicate
        lengths = torch.zeros(batch, width, device=device)
        finished = torch.zeros(batch, width, dtype=torch.bool, device=device)
        pad_only = torch.full((vocab,), -math.inf, device=device)
        pad_only[PAD_ID] = 0.0  # a finished hypothesis continues with <PAD> at no cost
        for _ in range(max_length - 1):
            log_probs = self._next_log_probs(tokens, memory).view(batch, width, vocab)
            log_probs = torch.where(finished[..., None], pad_only, log_probs)
            candidates = (scores[..., None] + log_probs).view(batch, -1)
            new_lengths = lengths + (~finished).float()
            penalty = _length_penalty(new_lengths, alpha).repeat_interleave(vocab, dim=1)
            top = (candidates / penalty).topk(width, dim=1).indices
            beam, step = top // vocab, top % vocab
            scores = candidates.gather(1, top)
            lengths = new_lengths.gather(1, beam)
            finished = finished.gather(1, beam) | (step == END_ID)
            rows = (beam + torch.arange(batch, device=device)[:, None] * width).view(-1)
            tokens = torch.cat([tokens[rows], step.view(-1, 1)], dim=1)
            if bool(finished.all()):
                break
        best = (scores / _length_penalty(lengths, alpha)).argmax(1)
        tokens = tokens.view(batch, width, -1)[torch.arange(batch, device=device), best]
        # Other beams may have run on after the chosen ones ended: drop all-<PAD> columns.
        return tokens[:, : int((tokens != PAD_ID).sum(1).max())]

    # --- inspection ---
    def parameter_summary(self) -> dict[str, int]:
        """Parameters per part and in total."""
        parts = {
            "image_encoder": self.image_encoder,
            "image_decoder": self.image_decoder,
            "text_encoder": self.text_encoder,
            "caption_decoder": self.caption_decoder,
        }
        counts = {name: _count(module) for name, module in parts.items()}
        counts["alignment_heads"] = (
            _count(self.image_pool)
            + _count(self.image_projection)
            + _count(self.text_projection)
            + self.log_logit_scale.numel()
        )
        counts["total"] = _count(self)
        return counts

    def summary(self) -> str:
        """The parameter summary as a small table."""
        counts = self.parameter_summary()
        name_width = max(map(len, counts))
        lines = [f"{name:<{name_width}}  {count:>13,}" for name, count in counts.items()]
        lines.insert(-1, "-" * (name_width + 15))
        return "\n".join(lines)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build_model(config: Config, vocab_size: int) -> MultimodalModel:
    """A `MultimodalModel` for `config` with an output layer of `vocab_size` tokens."""
    return MultimodalModel(config, vocab_size)
