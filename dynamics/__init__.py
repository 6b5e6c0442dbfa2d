"""Teacher mimicking (M1)-(M7): data, objective, gradient flow, optimal manifold and richness.

Curated public API; everything works on the effective parameters ``theta = [vec(A); vec(B)]``
of (M2) and the sufficient statistics of (L2), in float64.
"""

from .bilinear import BilinearDataset, instance_dataset
from .data import TeacherDataset, TeacherSpec, teacher_dataset
from .flow import RATE_WINDOW, FlowResult, adam, fit_rate, gradient_descent, gradient_flow
from .manifold import (
    DENSE_MAX,
    KERNEL_RTOL,
    NULL_RTOL,
    Richness,
    Spectrum,
    conserved,
    distance_to_manifold,
    hessian_spectrum,
    invisible_directions,
    lambda_max,
    predict_scale,
    richness,
    tangent_space,
)
from .objective import (
    Shapes,
    construction,
    finite_difference_grad,
    from_full,
    full_loss_torch,
    hessian,
    hvp,
    hvp_operator,
    loss,
    loss_and_grad,
    pack,
    relative_error,
    shapes,
    to_full,
    unpack,
)

__all__ = [
    "BilinearDataset",
    "instance_dataset",
    "DENSE_MAX",
    "KERNEL_RTOL",
    "NULL_RTOL",
    "RATE_WINDOW",
    "FlowResult",
    "Richness",
    "Shapes",
    "Spectrum",
    "TeacherDataset",
    "TeacherSpec",
    "adam",
    "conserved",
    "construction",
    "distance_to_manifold",
    "finite_difference_grad",
    "fit_rate",
    "from_full",
    "full_loss_torch",
    "gradient_descent",
    "gradient_flow",
    "hessian",
    "hessian_spectrum",
    "hvp",
    "hvp_operator",
    "invisible_directions",
    "lambda_max",
    "loss",
    "loss_and_grad",
    "pack",
    "predict_scale",
    "relative_error",
    "richness",
    "shapes",
    "tangent_space",
    "teacher_dataset",
    "to_full",
    "unpack",
]
