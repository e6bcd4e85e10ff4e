"""Blur synthesis: the blur model of the survey, ``B = K * I + N`` (eq. 1), and its non-uniform
forms (eq. 13-16).

- :mod:`.kernels` — kernel generators (linear motion, camera shake, Gaussian-process trajectories,
  Gaussian, defocus disk) and kernel validation.
- :mod:`.convolve` — uniform blur, direct or FFT, with explicit boundary modes.
- :mod:`.nonuniform` — per-pixel linear motion blur from a motion field ``(u, v)`` (Gong et al.).
- :mod:`.camera` — spatially varying blur from a camera trajectory (in-plane or 3-D rotation).
- :mod:`.frames` — GoPro-style frame averaging in linear light (survey §III-C).
- :mod:`.noise` — Gaussian, Poisson-Gaussian, JPEG and quantisation noise.
"""

from .camera import blur_camera_trajectory, random_camera_trajectory, random_homography_trajectory
from .convolve import blur
from .frames import average_frames, interpolate_frames
from .kernels import (
    camera_shake_kernel,
    disk_kernel,
    gaussian_kernel,
    gp_trajectory_kernel,
    kernel_to_image,
    linear_motion_kernel,
    validate_kernel,
    validate_kernel_tensor,
)
from .noise import add_gaussian_noise, add_poisson_gaussian_noise, jpeg_compress, quantize
from .nonuniform import (
    blur_motion_field,
    blur_motion_field_adjoint,
    blur_motion_field_np,
    canonical_motion_field,
    motion_field_kernels,
    random_motion_field,
)

__all__ = [
    "blur", "blur_camera_trajectory", "random_camera_trajectory", "random_homography_trajectory",
    "average_frames", "interpolate_frames", "camera_shake_kernel", "disk_kernel", "gaussian_kernel",
    "gp_trajectory_kernel", "kernel_to_image", "linear_motion_kernel", "validate_kernel",
    "validate_kernel_tensor", "add_gaussian_noise", "add_poisson_gaussian_noise", "jpeg_compress",
    "quantize", "blur_motion_field", "blur_motion_field_adjoint", "blur_motion_field_np",
    "canonical_motion_field", "motion_field_kernels", "random_motion_field",
]
