"""Teacher mimicking (M1)-(M7): data, objective, gradient flow, optimal manifold and richness.

Curated public API; everything works on the effective parameters ``theta = [vec(A); vec(B)]``
of (M2) and the sufficient statistics of (L2), in float64.
"""

from lsa_theory.checks import check_same_tree

from .bilinear import BilinearDataset, instance_dataset
from .certify import KernelCertificate, certify_kernel
from .data import TeacherDataset, TeacherSpec, teacher_dataset
from .descent import adam, gradient_descent
from .flow import gradient_flow
from .flow_common import FlowResult, loss_increase_bound
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
    nearest_manifold_point,
    parameter_blind_spots,
    predict_scale,
    rank_bound_warning,
    richness,
    tangent_space,
)
from .objective import (
    HessianBlocks,
    Shapes,
    construction,
    finite_difference_grad,
    from_full,
    full_loss_torch,
    hessian,
    hessian_blocks,
    hvp,
    hvp_operator,
    loss,
    loss_and_grad,
    loss_and_grad_error_bound,
    pack,
    relative_error,
    shapes,
    to_full,
    unpack,
)
from .rate_fit import (
    LOSS_FIT_RTOL,
    MODES,
    MODES_WINDOW,
    RATE_WINDOW,
    TWO_MODE_WINDOW,
    RateFit,
    fit_modes,
    fit_rate,
    fit_rate_roundoff,
    fit_two_mode,
    resolved,
)

__all__ = [
    "BilinearDataset",
    "instance_dataset",
    "DENSE_MAX",
    "KERNEL_RTOL",
    "NULL_RTOL",
    "RATE_WINDOW",
    "LOSS_FIT_RTOL",
    "MODES",
    "MODES_WINDOW",
    "RateFit",
    "fit_modes",
    "fit_rate_roundoff",
    "resolved",
    "TWO_MODE_WINDOW",
    "FlowResult",
    "KernelCertificate",
    "Richness",
    "Shapes",
    "Spectrum",
    "TeacherDataset",
    "TeacherSpec",
    "adam",
    "certify_kernel",
    "conserved",
    "construction",
    "distance_to_manifold",
    "finite_difference_grad",
    "fit_rate",
    "fit_two_mode",
    "from_full",
    "full_loss_torch",
    "gradient_descent",
    "gradient_flow",
    "hessian",
    "hessian_blocks",
    "HessianBlocks",
    "hessian_spectrum",
    "hvp",
    "hvp_operator",
    "invisible_directions",
    "lambda_max",
    "loss",
    "loss_and_grad",
    "loss_and_grad_error_bound",
    "loss_increase_bound",
    "nearest_manifold_point",
    "pack",
    "parameter_blind_spots",
    "predict_scale",
    "rank_bound_warning",
    "relative_error",
    "richness",
    "shapes",
    "tangent_space",
    "teacher_dataset",
    "to_full",
    "unpack",
]

check_same_tree(__file__)  # one source tree: ImportError if two are mixed
