"""Using a trained run: captions and where each word looks, retrieval, imagined images, and the
NumPy runtime an export ships."""

from mmlib.inference.attention import (
    caption_attention,
    subject_attention_share,
)
from mmlib.inference.export_runtime import (
    imagine_noise,
)
from mmlib.inference.imagine import (
    CANDIDATES,
    IMAGINE_FILE,
    Imagination,
    LatentFlow,
    caption_embeddings,
    fit_run_imagination,
    fit_steps,
    image_latents,
    imagine_pixels,
    train_flow,
)
from mmlib.inference.predictor import (
    Agreement,
    CaptionSubjects,
    ImageInput,
    Match,
    Predictor,
    PromptError,
    SampledPairs,
    load_images,
    vocabulary_samples,
)

__all__ = [
    "Agreement",
    "CANDIDATES",
    "CaptionSubjects",
    "IMAGINE_FILE",
    "ImageInput",
    "Imagination",
    "LatentFlow",
    "Match",
    "Predictor",
    "PromptError",
    "SampledPairs",
    "caption_attention",
    "caption_embeddings",
    "fit_run_imagination",
    "fit_steps",
    "image_latents",
    "imagine_noise",
    "imagine_pixels",
    "load_images",
    "subject_attention_share",
    "train_flow",
    "vocabulary_samples",
]
