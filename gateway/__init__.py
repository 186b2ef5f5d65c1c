"""The rendering gateway: latent vectors to PNG design sheets. Run ``python -m gateway``."""
