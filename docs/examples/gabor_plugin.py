"""A cvbench plugin: Gabor filter-bank energies + linear SVM. Run it with
``python -m bench --plugin docs/examples/gabor_plugin.py run -d digits -p gabor-linsvm``."""
import cv2
import numpy as np

from pipelines.base import ImageFeatures
from pipelines.classifiers import TunedFeatureClassifier, make_classifier
from pipelines.registry import register


class GaborFeatures(ImageFeatures):
    """Mean absolute response of each image to ``n_orient`` × 2 Gabor kernels, on a 2×2 grid."""

    def __init__(self, n_orient: int = 6):
        self.n_orient = n_orient

    def _extract(self, X: np.ndarray) -> np.ndarray:
        kernels = [cv2.getGaborKernel((9, 9), s, t, 4.0 * s, 0.5) for s in (1.5, 3.0)
                   for t in np.arange(self.n_orient) * np.pi / self.n_orient]
        gray = X.mean(axis=3).astype(np.float32)
        out = [[cv2.resize(np.abs(cv2.filter2D(img, cv2.CV_32F, k)), (2, 2), interpolation=cv2.INTER_AREA)
                for k in kernels] for img in gray]
        return np.asarray(out, np.float32).reshape(len(X), -1)


@register("gabor-linsvm", family="classical", features="gabor", classifier="linsvm")
def gabor_linsvm(n_orient: int = 6, seed: int = 0) -> TunedFeatureClassifier:
    """Gabor filter-bank energies → standardised linear SVM (C tuned on validation)."""
    clf, grid = make_classifier("linsvm", seed=seed)
    return TunedFeatureClassifier(GaborFeatures(n_orient), clf, grid, seed=seed)
