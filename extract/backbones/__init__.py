"""The backbones: the one table of them (registry), the EfficientNet-Lite port
(efficientnet_lite) and the reader of its PyTorch weights (pth)."""
