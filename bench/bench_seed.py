"""How long the synthetic Open Images takes: generating the default dataset, and seeding it into S3.

The baseline, measured in the same run, is the same images without their objects (background, distractors
and JPEG encoding at the same sizes): the difference is what drawing, placing and measuring the objects
costs. Target: the default 2,500 images generated in under 2 minutes. ``seed()`` then writes them to an
S3: the running stack's (``--s3-port``) or, by default, a moto server started here on a free port. Figures
are printed and written to ``bench/results/seed.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
from moto.server import ThreadedMotoServer

from local_aws.config import LocalAwsConfig
from local_aws.synthetic_open_images import DEFAULT_IMAGES, JPEG_QUALITY, DatasetCounts, iter_images, seed
from local_aws.synthetic_scenes import render_scene

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 120.0
SEED = 0


def generate(images: int) -> tuple[float, DatasetCounts, list[tuple[int, int]], float]:
    counts, sizes, jpeg_bytes = DatasetCounts(), [], 0
    started = time.perf_counter()
    for image in iter_images(images, seed=SEED):
        counts.add(image)
        sizes.append((image.width, image.height))
        jpeg_bytes += len(image.jpeg)
    return time.perf_counter() - started, counts, sizes, jpeg_bytes / max(1, images) / 1024


def backgrounds_only(sizes: list[tuple[int, int]]) -> float:
    started = time.perf_counter()
    for index, (width, height) in enumerate(sizes):
        scene = render_scene(np.random.default_rng([SEED, index]), width, height, [])
        scene.image.save(io.BytesIO(), format="JPEG", quality=JPEG_QUALITY)
    return time.perf_counter() - started


def seed_seconds(images: int, s3_port: int | None) -> tuple[float, str]:
    with tempfile.TemporaryDirectory(prefix="bench-seed-") as data_dir:
        if s3_port is not None:
            config = LocalAwsConfig(data_dir=Path(data_dir), s3_port=s3_port)
            return seed(config, images=images, seed=SEED).seconds, f"S3 at {config.s3_endpoint}"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            config = LocalAwsConfig(data_dir=Path(data_dir), s3_port=port)
            return seed(config, images=images, seed=SEED).seconds, "moto server (in-process)"
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=DEFAULT_IMAGES)
    parser.add_argument("--s3-port", type=int, help="seed the S3 on this 127.0.0.1 port instead of moto")
    arguments = parser.parse_args()

    generate_s, counts, sizes, mean_kb = generate(arguments.images)
    baseline_s = backgrounds_only(sizes)
    upload_s, s3 = seed_seconds(arguments.images, arguments.s3_port)
    results = {
        "benchmark": "synthetic Open Images: generation and seed()",
        "images": arguments.images,
        "boxes": counts.boxes,
        "bird_images": counts.bird_images,
        "mean_jpeg_kib": round(mean_kb, 1),
        "generate_s": generate_s,
        "generate_ms_per_image": 1000 * generate_s / max(1, arguments.images),
        "baseline_backgrounds_only_s": baseline_s,
        "seed_s": upload_s,
        "seed_s3": s3,
        "target_generate_s": TARGET_S,
        "target_met": generate_s < TARGET_S,
    }
    print(f"Synthetic Open Images, {arguments.images} images (seed {SEED}): {counts}")
    print(
        f"  generate: {generate_s:.1f} s ({results['generate_ms_per_image']:.1f} ms/image, {mean_kb:.0f} KiB)"
    )
    print(f"  baseline, backgrounds only: {baseline_s:.1f} s")
    print(f"  seed() into {s3}: {upload_s:.1f} s (generation, uploads and reference index)")
    print(f"  target generate < {TARGET_S:.0f} s: {'met' if results['target_met'] else 'NOT met'}")
    out = ROOT / "bench" / "results" / "seed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
