"""Image transforms: timm's ImageNet pipeline for decoded images, a size-keeping one for CIFAR."""

from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

from PIL import Image

from ..config import TrainConfig
from ..spaces import SearchSpace

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# For grayscale images: the mean of ImageNet's three channel statistics.
IMAGENET_GRAY_MEAN, IMAGENET_GRAY_STD = (0.449,), (0.226,)


def _convert(image: Image.Image, mode: str) -> Image.Image:
    return image if image.mode == mode else image.convert(mode)


def timm_transforms(space: SearchSpace, train: TrainConfig, mode: str) -> tuple[Callable, Callable]:
    """timm's ImageNet ``(train, eval)`` transforms at the space's size, after converting images to
    ``mode``; RandAugment, colour jitter and random erasing for RGB only."""
    from timm.data import create_transform
    from torchvision import transforms

    rgb = mode == "RGB"
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if rgb else (IMAGENET_GRAY_MEAN, IMAGENET_GRAY_STD)
    input_size = (space.in_chans, space.image_size, space.image_size)
    train_tf = create_transform(
        input_size=input_size, is_training=True, interpolation="bicubic", mean=mean, std=std,
        auto_augment=train.randaugment if rgb else None,
        re_prob=train.random_erasing if rgb else 0.0, re_mode="pixel",
        # Colour jitter (used when RandAugment is off) needs RGB images.
        color_jitter=0.4 if rgb else None,
    )
    eval_tf = create_transform(input_size=input_size, is_training=False, interpolation="bicubic", mean=mean, std=std)
    # torchvision's sets hand out images in their own mode (MNIST "L", CIFAR "RGB").
    to_mode = transforms.Lambda(partial(_convert, mode=mode))
    return transforms.Compose([to_mode, train_tf]), transforms.Compose([to_mode, eval_tf])


def cifar_train_transform(mean: Sequence[float], std: Sequence[float], train: TrainConfig,
                          size: int = 32) -> Callable:
    """Pad-and-crop, flip, RandAugment, normalise, random erasing: keeps the 32x32 size.

    timm's ``create_transform`` would use a random-resized crop with ImageNet's
    (0.08, 1) scale range, far too aggressive for 32x32 images, so the pipeline
    is built from the same timm pieces around a padded random crop.
    """
    from timm.data.auto_augment import rand_augment_transform
    from timm.data.random_erasing import RandomErasing
    from torchvision import transforms

    steps: list[Callable] = [transforms.RandomCrop(size, padding=size // 8), transforms.RandomHorizontalFlip()]
    if train.randaugment:
        hparams = {"translate_const": int(size * 0.45), "img_mean": tuple(round(255 * m) for m in mean)}
        steps.append(rand_augment_transform(train.randaugment, hparams))
    steps += [transforms.ToTensor(), transforms.Normalize(mean, std)]
    if train.random_erasing > 0:
        # 'pixel' (random-noise) erasing as in DeiT.
        steps.append(RandomErasing(train.random_erasing, mode="pixel", device="cpu"))
    return transforms.Compose(steps)


def eval_tensor_transform(mean: Sequence[float], std: Sequence[float]) -> Callable:
    from torchvision import transforms

    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
