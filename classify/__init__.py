"""The classification stage: shallow classifiers on cached features (never imports TensorFlow)."""
