"""Where MNIST and Fashion-MNIST live: file names, checksums and public mirrors."""

from __future__ import annotations

from dataclasses import dataclass

SPLITS = ("train", "test")


@dataclass(frozen=True)
class FileSpec:
    """One standard IDX file and the checksums it is verified against."""

    name: str  # the upstream file name, gzipped
    sha256: str | None  # of the decompressed bytes; None where we do not know it
    gz_md5: str  # of the upstream .gz as published (the sums torchvision checks)
    count: int  # number of images or labels it holds


@dataclass(frozen=True)
class DatasetSpec:
    """A vision dataset: its folder name, its files per split and its mirror."""

    name: str
    folder: str  # sub-folder of a data_dir or cache holding the files
    mirror: str  # base URL the downloader appends file names to
    files: dict[str, tuple[FileSpec, FileSpec]]  # split -> (images, labels)
    classes: tuple[str, ...]


MNIST = DatasetSpec(
    name="mnist",
    folder="mnist",
    mirror="https://ossci-datasets.s3.amazonaws.com/mnist/",
    files={
        # decompressed sha256 of the full training files is not recorded here (we
        # never held them); their upstream gz md5 is checked instead
        "train": (
            FileSpec(
                "train-images-idx3-ubyte.gz",
                None,
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                60_000,
            ),
            FileSpec(
                "train-labels-idx1-ubyte.gz",
                None,
                "d53e105ee54ea40749a09fcbcd1e9432",
                60_000,
            ),
        ),
        "test": (
            FileSpec(
                "t10k-images-idx3-ubyte.gz",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                "9fb629c4189551a2d022fa330f9573f3",
                10_000,
            ),
            FileSpec(
                "t10k-labels-idx1-ubyte.gz",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                "ec29112dd5afa0611ce80d1b7f02629c",
                10_000,
            ),
        ),
    },
    classes=tuple(str(d) for d in range(10)),
)

FASHION_MNIST = DatasetSpec(
    name="fashion_mnist",
    folder="fashion-mnist",
    mirror="https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    files={
        "train": (
            FileSpec(
                "train-images-idx3-ubyte.gz",
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                60_000,
            ),
            FileSpec(
                "train-labels-idx1-ubyte.gz",
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                "25c81989df183df01b3e8a0aad5dffbe",
                60_000,
            ),
        ),
        "test": (
            FileSpec(
                "t10k-images-idx3-ubyte.gz",
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                "bef4ecab320f06d8554ea6380940ec79",
                10_000,
            ),
            FileSpec(
                "t10k-labels-idx1-ubyte.gz",
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                "bb300cfdad3c16e7a12a480ee83cd310",
                10_000,
            ),
        ),
    },
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
)

DATASETS = {"mnist": MNIST, "fashion_mnist": FASHION_MNIST}


def dataset_spec(name: str) -> DatasetSpec:
    """Return the spec of a dataset by name ("fashion-mnist" is accepted too)."""
    key = name.lower().replace("-", "_") if isinstance(name, str) else name
    if key not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}; choose one of {sorted(DATASETS)} "
            "(or 'fashion-mnist')"
        )
    return DATASETS[key]


def check_split(split: str) -> str:
    """Return split unchanged if it is 'train' or 'test', else raise."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split
