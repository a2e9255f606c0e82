"""mmlib: a small, tested library behind the multimodal engraving course."""

from mmlib.config import Config, ConfigError, get_device

__all__ = ["Config", "ConfigError", "get_device"]
__version__ = "0.1.0"
