"""In-place distillation losses: a subnet learns from the largest subnet's soft targets.

The largest subnet of the same step is the teacher (trained on the labels); its logits are
detached, so the students pull towards it and never the reverse (AttentiveNAS, AlphaNet).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import DistillName


def kl_distillation(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of KL(teacher || student) at temperature 1."""
    teacher = F.log_softmax(teacher_logits.detach().float(), dim=-1)
    student = F.log_softmax(student_logits.float(), dim=-1)
    return (teacher.exp() * (teacher - student)).sum(-1).mean()


def alpha_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, alpha: float,
                     ratio_clip: float = 5.0) -> torch.Tensor:
    """Per-sample alpha-divergence D_a(p || q) = sum_k q_k f(p_k / q_k), f(t) = (t^a - 1) / (a (a - 1)).

    ``p`` is the teacher's distribution, ``q`` the student's. ``a = 1`` is KL(p || q) and
    ``a = 0`` is KL(q || p). For other ``a``, ``(p / q)^a`` is clipped at ``ratio_clip``: the
    importance weights blow up where the student gives a class almost no mass (AlphaNet clips at 5).
    """
    log_p = F.log_softmax(teacher_logits.detach().float(), dim=-1)
    log_q = F.log_softmax(student_logits.float(), dim=-1)
    q = log_q.exp()
    if abs(alpha - 1.0) < 1e-6:
        return (log_p.exp() * (log_p - log_q)).sum(-1)
    if abs(alpha) < 1e-6:
        return (q * (log_q - log_p)).sum(-1)
    weights = torch.exp(alpha * (log_p - log_q)).clamp(max=ratio_clip)
    return (q * (weights - 1.0)).sum(-1) / (alpha * (alpha - 1.0))


def adaptive_alpha_distillation(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                                alphas: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """AlphaNet's loss: per sample the larger of two alpha-divergences (one mass-covering, one
    mode-seeking), so a student is penalised both for over- and for under-estimating the
    teacher's uncertainty. Mean over the batch."""
    low = alpha_divergence(student_logits, teacher_logits, alphas[0])
    high = alpha_divergence(student_logits, teacher_logits, alphas[1])
    return torch.maximum(low, high).mean()


def distillation_loss(name: DistillName, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    if name == "kl":
        return kl_distillation(student_logits, teacher_logits)
    if name == "alpha":
        return adaptive_alpha_distillation(student_logits, teacher_logits)
    raise ValueError(f"no distillation loss {name!r}")
