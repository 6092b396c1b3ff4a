"""offtheshelf extraction stage: images -> headless ImageNet CNN -> HDF5 features.

Nothing heavy is imported here: TensorFlow loads only in `backbones.build` and
`pipeline`, so the HDF5 reader in `extract.featurefile` works without it.
"""
