"""Augmentation of whole batches as tensor ops: turns, shifts, bends, other pens, inks, scanners, rendered views."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from digitrec.models.recipes import Recipe


def augment(x: torch.Tensor, recipe: Recipe, generator: torch.Generator) -> torch.Tensor:
    """The recipe's augmentation of a whole batch: random affine, then what other pens and scanners do to
    some of the digits. Each picks its digits at random; all keep full contrast, as preprocessing does."""
    return _pens_and_scanners(random_affine(x, recipe, generator), recipe, generator)


def augment_with_clean(x: torch.Tensor, clean: torch.Tensor, recipe: Recipe,
                       generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`augment(x)`, and `clean` (the same digits as written, before any rendered view) turned and shifted
    alike but otherwise left as they are: what a teacher that reads the digit itself is shown."""
    both = random_affine(torch.cat([x, clean], dim=1), recipe, generator)
    return _pens_and_scanners(both[:, :1], recipe, generator), both[:, 1:]


def _pens_and_scanners(x: torch.Tensor, recipe: Recipe, generator: torch.Generator) -> torch.Tensor:
    for fraction, change in ((recipe.lowres, _low_resolution), (recipe.blocky, _block_counts),
                             (recipe.thickness, _other_pen), (recipe.ink_levels, _ink_profile),
                             (recipe.broken, _broken_strokes)):
        x = _change_some(x, fraction, change, generator)
    return x


def _change_some(x: torch.Tensor, fraction: float, change: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
                 generator: torch.Generator) -> torch.Tensor:
    """`change` applied to a random `fraction` of the batch's digits, which are then stretched to full
    contrast, as preprocessing stretches real pictures."""
    if not fraction:
        return x
    chosen = (torch.rand(x.shape[0], generator=generator) < fraction).to(x.device)
    if not chosen.any():
        return x
    x = x.clone()
    changed = change(x[chosen], generator)
    x[chosen] = changed / changed.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
    return x


def _low_resolution(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shrunk to 7-16 px and scaled back up: small, blurry digits."""
    side = int(torch.randint(7, 17, (1,), generator=generator))
    return F.interpolate(F.interpolate(x, size=(side, side), mode="area"), size=x.shape[-2:], mode="bilinear",
                         align_corners=False)


def _block_counts(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """An old scanner's record: the digit binarised, counted in blocks (8 or 16 of them across the digit's
    20-pixel box, as a 32x32 bitmap counted into 8x8 or 16x16; 17 levels) and shown scaled back up."""
    side = 11 if torch.rand(1, generator=generator) < 0.5 else 22
    counts = F.interpolate((x > 0.45).float(), size=(side, side), mode="area")
    return F.interpolate(torch.round(counts * 16) / 16, size=x.shape[-2:], mode="bilinear", align_corners=False)


def _other_pen(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A pen a pixel wider (2x2 maximum) or narrower (2x2 minimum) than the writer's, half each."""
    wider = torch.rand(x.shape[0], 1, 1, 1, generator=generator).to(x.device) < 0.5
    padded = F.pad(x, (0, 1, 0, 1))
    grown = F.max_pool2d(padded, 2, stride=1)
    thinned = -F.max_pool2d(-padded, 2, stride=1)
    thinned = torch.where(thinned.amax(dim=(1, 2, 3), keepdim=True) > 0.3, thinned, x)  # never erase a digit
    return torch.where(wider, grown, thinned)


def _ink_profile(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Another grey-level profile across the stroke: gamma 0.5 (flat, saturated marker) to 2 (soft pencil)."""
    gamma = torch.exp((torch.rand(x.shape[0], 1, 1, 1, generator=generator) * 2 - 1) * 0.7).to(x.device)
    return x.clamp_min(0) ** gamma


def _broken_strokes(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Small gaps in the strokes (a dry pen, a line taken out under the ink): about a tenth of the
    area, in patches a few pixels across."""
    noise = torch.rand(x.shape[0], 1, 7, 7, generator=generator).to(x.device)
    keep = F.interpolate(noise, size=x.shape[-2:], mode="bilinear", align_corners=False) > 0.12
    return x * keep


def hollow_strokes(x: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Some of a batch's digits (`fraction` of them) drawn as outlines: the stroke made a pixel wider on each
    side (3x3 maximum), less that widened stroke worn away by a pixel (3x3 minimum). What is left is a
    rim about a pixel wide around a hollow as wide as the pen, as outlined lettering draws a digit."""
    return _change_some(x, fraction, _rim, generator)


def _rim(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    grown = F.max_pool2d(x, 3, stride=1, padding=1)
    return (grown + F.max_pool2d(-grown, 3, stride=1, padding=1)).clamp_min(0)


def random_affine(x: torch.Tensor, recipe: Recipe, generator: torch.Generator) -> torch.Tensor:
    """Rotate, scale and shift a whole batch at once with one affine grid; bend it elastically if asked."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(recipe.rotate_deg)
    scale = 1 + (torch.rand(n, generator=generator) * 2 - 1) * recipe.scale
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (recipe.shift_px * 2 / x.shape[-1])
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    if recipe.elastic_px:
        grid = grid + elastic_field(n, x.shape[-1], recipe.elastic_px, generator).to(x.device)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def elastic_field(n: int, side: int, max_px: float, generator: torch.Generator) -> torch.Tensor:
    """Smooth random displacements [n, side, side, 2] in grid units, at most `max_px` pixels.

    Simard et al. (2003) smooth per-pixel noise with a Gaussian (sigma 4 px); random shifts at a 4x4
    lattice of control points, upsampled bicubically, give the same slow bends at a fraction of the cost."""
    bound = max_px * 2 / side
    control = (torch.rand(n, 2, 4, 4, generator=generator) * 2 - 1) * bound
    field = F.interpolate(control, size=(side, side), mode="bicubic", align_corners=True)
    return field.clamp_(-bound, bound).permute(0, 2, 3, 1)  # bicubic overshoots its control points


def with_rendered(xb: torch.Tensor, views: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Some of a batch's digits (uint8 [n, 1, 28, 28]) swapped for one of their rendered views (uint8
    [views, n, 1, 28, 28]): the same digit as another pen, paper or scanner gives it, after preprocessing."""
    n = xb.shape[0]
    chosen = (torch.rand(n, generator=generator) < fraction).to(xb.device)
    which = torch.randint(views.shape[0], (n,), generator=generator).to(xb.device)
    picked = views[which, torch.arange(n, device=xb.device)]
    return torch.where(chosen[:, None, None, None], picked, xb)
