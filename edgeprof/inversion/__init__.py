"""Privacy leakage per partition point: decoders trained to invert the features a device uploads, scored with
SSIM (Wang et al. 2004, one pinned setting, see `ssim.SSIM_DESCRIPTION`) against held-out images that are
split from the attacker's training images by source file, next to the score of a no-information baseline
(the dataset-mean image)."""
