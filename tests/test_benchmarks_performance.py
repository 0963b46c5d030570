"""The performance benchmarks run (on CPU, tiny settings) and print their figures."""

from __future__ import annotations

import json

from benchmarks.performance import gpu as bench


def test_gpu_benchmark_runs_on_cpu(tmp_path, capsys):
    out = tmp_path / "bench.json"
    report = bench.main(["--device", "cpu", "--image-size", "32", "--batch-size", "4", "--steps", "1",
                         "--repeats", "1", "--warmup", "0", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "supernet / dense:" in printed and "timm fused attention (dense model): True" in printed
    assert json.loads(out.read_text())["supernet_over_dense"] == report["supernet_over_dense"] > 0
    assert report["arch"]["embed_dim"] == 240 and report["arch"]["depth"] == 14  # autoformer-tiny's largest
    for model in ("supernet", "dense"):
        assert report["results"][model]["images_per_s"] > 0
        assert report["results"][model]["mfu"] is None  # no known peak FLOP/s for a CPU
