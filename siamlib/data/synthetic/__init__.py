"""Synthetic smile videos with planted age cues, in the UvA-NEMO layout.

`generate_dataset(root, SyntheticConfig(...), seed)` writes the dataset and returns its
annotation table. One module per concept:
    population  subjects and clips in UvA-NEMO proportions
    cues        planted cue formulas
    dynamics    smile intensity curve
    nuisance    identity, scene, head motion, blinks and sensor noise
    face        face geometry and landmarks
    render      drawing
    clip        everything about one clip
    regions     cue region masks in the aligned face frame
    ground_truth  reading the masks and per-frame targets at the sampled frames
    oracle      regressor on the latent cues: the error floor
    detection   face detection rate of OpenCV's Haar cascade
    encode      H.264 writer
    card        dataset card
    generate    the driver, parallel over videos
"""

from siamlib.data.synthetic.config import SyntheticConfig
from siamlib.data.synthetic.generate import generate_dataset, latent_cue_table

__all__ = ["SyntheticConfig", "generate_dataset", "latent_cue_table"]
