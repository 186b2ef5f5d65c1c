"""Publishing generators as versioned TF Serving SavedModels. Run ``python -m export --help``."""
