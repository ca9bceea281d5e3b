"""CAM methods by name: the one registry the API, the CLI's --method choices and the config read."""

from __future__ import annotations

from edge.errors import MethodError
from edge.explain.cam.ablationcam import AblationCAM
from edge.explain.cam.base import CamContext, CamMethod, needs_trunk, normalise
from edge.explain.cam.cam import CAM
from edge.explain.cam.eigencam import EigenCAM
from edge.explain.cam.eigengradcam import EigenGradCAM
from edge.explain.cam.fem import FEM
from edge.explain.cam.finercam import FinerCAM
from edge.explain.cam.gradcam import GradCAM
from edge.explain.cam.gradcamelementwise import GradCAMElementWise
from edge.explain.cam.gradcampp import GradCAMPlusPlus
from edge.explain.cam.hirescam import HiResCAM
from edge.explain.cam.kpcacam import KPCACAM
from edge.explain.cam.layercam import LayerCAM
from edge.explain.cam.randomcam import RandomCAM
from edge.explain.cam.scorecam import ScoreCAM
from edge.explain.cam.shapleycam import ShapleyCAM
from edge.explain.cam.smoothgradcampp import SmoothGradCAMpp
from edge.explain.cam.smoothscore import ISCAM, SSCAM
from edge.explain.cam.xgradcam import XGradCAM

METHODS: dict[str, CamMethod] = {
    method.name: method
    for method in (
        GradCAM(), GradCAMPlusPlus(), XGradCAM(), LayerCAM(), HiResCAM(), EigenCAM(), CAM(),
        # head only: no trunk pass beyond the frame's own
        GradCAMElementWise(), EigenGradCAM(), KPCACAM(), FEM(), FinerCAM(), ShapleyCAM(), AblationCAM(), RandomCAM(),
        # trunk passes: perturbed copies of the input through the feature model (docs/cam-methods.md: their cost)
        ScoreCAM(), SSCAM(), ISCAM(), SmoothGradCAMpp(),
    )
}
DEFAULT_METHOD = "gradcam"
# The methods that run the feature model again on perturbed copies of the input (k or more passes per frame): on
# demand, not at the camera's frame rate (docs/cam-methods.md has their cost). Read from each method's own flag.
TRUNK_PASS_METHODS = tuple(name for name, method in METHODS.items() if needs_trunk(method))


def get_method(name: str) -> CamMethod:
    try:
        return METHODS[name]
    except KeyError:
        raise MethodError(f"unknown CAM method {name!r}; choose one of {', '.join(METHODS)}") from None


__all__ = ["DEFAULT_METHOD", "METHODS", "TRUNK_PASS_METHODS", "CamContext", "CamMethod", "get_method", "needs_trunk",
           "normalise"]
