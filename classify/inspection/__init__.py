"""`inspect`: what the cached features say about the data (duplicates, leakage, likely
label errors, outliers, a map). Named so as not to shadow the standard library's
`inspect`; like the rest of classify, it never imports TensorFlow."""
