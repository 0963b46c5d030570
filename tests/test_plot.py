"""Pareto fronts, hypervolume, the cloud cache and ``focusformer-plot`` end to end on a tiny run."""

from __future__ import annotations

import itertools
import json
import re
import shutil

import matplotlib
import numpy as np
import pytest

from focusformer import plot
from focusformer.budget import Budget
from focusformer.cli.plot import main
from focusformer.config import load_config
from focusformer.search import cloud as clouds
from focusformer.search.pareto import hypervolume, pareto_front
from focusformer.search.results import SearchResult, append_results, read_results
from focusformer.search.scoring import CandidateScorer
from focusformer.spaces.counts import count_macs, count_params

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAST = ["--cloud", "8", "--val-images", "64"]


# -- pareto_front -------------------------------------------------------------------------------
def test_front_of_a_single_point_is_that_point():
    assert pareto_front([(5.0, 40.0)]).tolist() == [0]


def test_front_of_nothing_is_empty():
    assert pareto_front([]).tolist() == []
    assert hypervolume([], (0, 1)) == 0.0


def test_dominated_points_are_dropped():
    points = [(1, 50), (2, 40), (3, 60), (2, 70), (4, 70), (0.5, 10)]
    # (2,40) loses to (1,50); (3,60) and (4,70) lose to (2,70), which has fewer MACs.
    assert pareto_front(points).tolist() == [5, 0, 3]


def test_ties_keep_one_point():
    assert pareto_front([(1, 50), (1, 50), (2, 50)]).tolist() == [0]  # duplicates: the first one
    assert pareto_front([(1, 40), (1, 60)]).tolist() == [1]  # same MACs: the more accurate one
    assert pareto_front([(2, 50), (1, 50)]).tolist() == [1]  # same accuracy: the cheaper one


def test_unsorted_input_gives_indices_in_increasing_macs():
    points = np.array([(3, 30), (1, 10), (4, 5), (2, 20), (5, 50)], dtype=float)
    for perm in itertools.permutations(range(len(points))):
        shuffled = points[list(perm)]
        front = pareto_front(shuffled)
        assert shuffled[front].tolist() == [[1, 10], [2, 20], [3, 30], [5, 50]]


def test_bad_points_are_rejected():
    with pytest.raises(ValueError):
        pareto_front([(1, 2, 3)])
    with pytest.raises(ValueError):
        pareto_front([(1, float("nan"))])


# -- hypervolume --------------------------------------------------------------------------------
def test_hypervolume_of_a_staircase():
    # MACs 0..100 -> x 0..1. Front (0, 50%), (50, 80%): 0.5 x 0.5 + 0.5 x 0.8 = 0.65.
    staircase = [(0, 50), (50, 80)]
    assert hypervolume(staircase, (0, 100)) == pytest.approx(0.65)
    # A dominated point adds nothing; order does not matter.
    assert hypervolume([(60, 70), (50, 80), (0, 50)], (0, 100)) == pytest.approx(0.65)
    # Three steps, range offset: x = 0.25, 0.5, 0.75 -> 0.25 x .2 + 0.25 x .4 + 0.25 x .6 = 0.3.
    assert hypervolume([(150, 20), (200, 40), (250, 60)], (100, 300)) == pytest.approx(0.3)


def test_hypervolume_extremes():
    assert hypervolume([(10, 100)], (10, 20)) == pytest.approx(1.0)  # smallest subnet, perfect
    assert hypervolume([(20, 100)], (10, 20)) == 0.0  # the largest subnet alone: the reference MACs
    assert hypervolume([(5, 40)], (10, 20)) == pytest.approx(0.4)  # below the range: clipped to x = 0
    assert hypervolume([(7, 30)], (7, 7)) == pytest.approx(0.3)  # a space of one size
    with pytest.raises(ValueError):
        hypervolume([(1, 1)], (2, 1))


# -- the cloud ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def space():
    return load_config("digits").space


def test_cloud_archs(space):
    archs = clouds.cloud_archs(space, 12, seed=3)
    assert archs[:2] == [space.smallest(), space.largest()]
    assert len(archs) == len(set(archs)) == 12
    assert archs == clouds.cloud_archs(space, 12, seed=3)
    assert archs != clouds.cloud_archs(space, 12, seed=4)
    assert clouds.cloud_archs(space, 1, seed=0) == [space.smallest()]


def test_cloud_cache_round_trip_and_staleness(space, tmp_path):
    archs = clouds.cloud_archs(space, 4, seed=0)
    cloud = clouds.Cloud("search-val", 0, 64, tuple(archs), tuple(count_macs(a, space) for a in archs),
                       (10.0, 50.0, 20.0, 30.0))
    path = clouds.cloud_path(tmp_path, "search-val", 4, 0, 64)
    checkpoint = {"epoch": 1, "step": 10}
    clouds.write_cloud(path, cloud, space, checkpoint)
    assert clouds.read_cloud(path, space, archs, "search-val", 0, 64, checkpoint) == cloud
    assert clouds.read_cloud(path, space, archs, "search-val", 0, 64, {"epoch": 2, "step": 20}) is None
    assert clouds.read_cloud(path, space, archs[::-1], "search-val", 0, 64, checkpoint) is None
    path.write_text('{"format": 1, "subnets": [')
    assert clouds.read_cloud(path, space, archs, "search-val", 0, 64, checkpoint) is None


# -- focusformer-plot end to end ----------------------------------------------------------------
def _results(space, method, rng, top1, test_top1):
    found = []
    for budget in (0.5e6, 1.0e6):
        arch = next(a for a in iter(lambda: space.sample(rng), None) if count_macs(a, space) <= budget)
        found.append(SearchResult(method, Budget(budget), arch, count_macs(arch, space), count_params(arch, space),
                                  top1, test_top1, 1.0, 20))
    return found


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A one-epoch digits run with recorded specialize and evolution results."""
    from focusformer.training.trainer import Trainer

    config = load_config("digits", ["train.epochs=1", "train.batch_size=128", "train.sampler=uniform"])
    directory = tmp_path_factory.mktemp("plot") / "run"
    Trainer(config, directory, progress=False).fit()
    rng = np.random.default_rng(0)
    append_results(directory, _results(config.space, "sampler", rng, 42.0, 40.0))
    append_results(directory, _results(config.space, "evolution", rng, 41.0, None))
    return directory


def _hypervolumes(out: str) -> list[float]:
    return [float(v) for v in re.findall(r"hypervolume (\d+\.\d+)", out)]


def test_plot_png_with_cache(run, tmp_path, capsys, monkeypatch):
    figure = tmp_path / "figure.png"
    assert main([str(run), "--output", str(figure), *FAST]) == 0
    out = capsys.readouterr().out
    data = figure.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    image = matplotlib.image.imread(figure)
    assert image.shape[0] > 0 and image.shape[1] > 0
    [volume] = _hypervolumes(out)
    assert "scored in" in out
    assert re.search(r"^\s+budget\s+specialized MACs\s+top-1\s+evolution MACs\s+top-1$", out, re.M)
    assert re.search(r"^\s+500K\s+\S+\s+42\.00\s+\S+\s+41\.00$", out, re.M)
    cache = run / "results" / "cloud-search-val-8-0-64.json"
    # The printed hypervolume is the cached cloud's, over the space's smallest-to-largest MACs.
    space = load_config("digits").space
    subnets = json.loads(cache.read_text())["subnets"]
    assert len(subnets) == 8
    assert all(s["macs"] == count_macs(space.arch_from_dict(s["arch"]), space) for s in subnets)
    points = [(s["macs"], s["top1"]) for s in subnets]
    span = (count_macs(space.smallest(), space), count_macs(space.largest(), space))
    assert 0.0 < volume == round(hypervolume(points, span), 4)

    def fail(*args, **kwargs):
        raise AssertionError("the cached cloud should have been reused")

    monkeypatch.setattr(CandidateScorer, "score", fail)
    figure.unlink()
    assert main([str(run), "--output", str(figure), *FAST, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "cached in" in out and _hypervolumes(out) == [volume]
    assert figure.read_bytes().startswith(PNG_SIGNATURE)


def test_plot_says_when_a_result_was_scored_on_other_images(run, tmp_path, capsys):
    """A search-val top-1 on 30 images does not compare with a cloud's on 64: the report says so,
    and the result records its image count."""
    other = tmp_path / "run"
    shutil.copytree(run, other)
    space = load_config("digits").space
    arch = space.smallest()
    found = SearchResult("random", Budget(0.5e6), arch, count_macs(arch, space), count_params(arch, space), 50.0,
                         None, 1.0, 8, val_images=30)
    append_results(other, [found])
    assert read_results(other, "random", space) == [found]
    assert main([str(other), "--output", str(tmp_path / "f.png"), *FAST, "--no-progress"]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if "note:" in line]
    assert notes == ["  note: random at 500K MACs was scored on 30 search-val images, the cloud on 64: their top-1 do "
                     "not compare"]


def test_plot_pdf(run, tmp_path, capsys):
    figure = tmp_path / "figure.pdf"
    assert main([str(run), "-o", str(figure), *FAST, "--no-progress"]) == 0
    assert figure.read_bytes().startswith(b"%PDF")
    assert not list(tmp_path.glob("*.tmp"))


def test_two_runs_with_labels(run, tmp_path, capsys, monkeypatch):
    other = tmp_path / "other"
    shutil.copytree(run, other)  # same weights, cache included
    monkeypatch.setitem(matplotlib.rcParams, "svg.fonttype", "none")  # legend text stays searchable
    figure = tmp_path / "both.svg"
    assert main([str(run), str(other), "-o", str(figure), *FAST, "--labels", "focus,uniform", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^focus \(digits", out, re.M) and re.search(r"^uniform \(digits", out, re.M)
    volumes = _hypervolumes(out)
    assert len(volumes) == 2 and volumes[0] == volumes[1]
    svg = figure.read_text()
    for text in ("focus: Pareto front", "uniform: Pareto front", "uniform: specialized", "focus: evolution",
                 "top-1 (%) on search-val", "MMACs"):
        assert text in svg


def test_front_curve_is_the_best_top1_within_each_mac_count():
    cloud = clouds.Cloud("search-val", 0, 10, archs=(None,) * 4, macs=(10, 20, 30, 40), top1=(50.0, 45.0, 60.0, 55.0))
    curve = plot.front_curve(cloud, np.array([5, 10, 15, 20, 29, 30, 45]))
    np.testing.assert_array_equal(curve, [np.nan, 50, 50, 50, 50, 60, 60])


def test_seeds_of_one_method_are_drawn_as_a_band_with_budgets_marked(run, tmp_path, capsys, monkeypatch):
    copies = []
    for name in ("s1", "s2"):
        shutil.copytree(run, tmp_path / name)
        copies.append(str(tmp_path / name))
    monkeypatch.setitem(matplotlib.rcParams, "svg.fonttype", "none")
    figure = tmp_path / "seeds.svg"
    assert main([str(run), *copies, "-o", str(figure), *FAST, "--labels", "focus,focus,uniform",
                 "--budgets", "500K,1M", "--no-progress"]) == 0
    svg = figure.read_text()
    for text in ("focus: range of 2 seeds", "focus: mean front", "uniform: Pareto front", "budgets: 500K, 1M"):
        assert text in svg
    assert "focus: Pareto front" not in svg
    assert main([str(run), "-o", str(figure), *FAST, "--budgets", "cheap", "--no-progress"]) == 2
    assert "not a number" in capsys.readouterr().err


def test_test_split_and_corrupt_cache(run, tmp_path, capsys):
    args = [str(run), "-o", str(tmp_path / "test.png"), "--split", "test", "--cloud", "3", "--val-images", "16",
            "--no-progress", "--seed", "7"]
    cache = run / "results" / "cloud-test-3-7-16.json"
    cache.parent.mkdir(exist_ok=True)
    cache.write_text("{not json")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "scored in" in out and "on test (16 images" in out
    assert re.search(r"^\s+500K\s+\S+\s+40\.00\s+\S+\s+-$", out, re.M)  # evolution has no test top-1
    assert main(args) == 0
    assert "cached in" in capsys.readouterr().out


def _broken_run(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "last.pt").write_bytes(b"not a checkpoint")
    return broken


@pytest.mark.parametrize("case, expected", [
    ("missing", "not a run directory"),
    ("no-checkpoint", "no checkpoint here"),
    ("corrupt", "corrupt checkpoint"),
    ("extension", "unsupported figure format"),
    ("labels", "--labels gives 1 names for 2 runs"),
    ("cloud", "--cloud must be at least 1"),
    ("unwritable", "is not a directory"),
])
def test_errors(run, tmp_path, capsys, case, expected):
    figure = tmp_path / "figure.png"
    runs = [str(run)]
    extra = []
    if case == "missing":
        runs = [str(tmp_path / "nowhere")]
    elif case == "no-checkpoint":
        (tmp_path / "empty").mkdir()
        runs = [str(tmp_path / "empty")]
    elif case == "corrupt":
        runs = [str(_broken_run(tmp_path))]
    elif case == "extension":
        figure = tmp_path / "figure.jpg"
    elif case == "labels":
        runs, extra = [str(run), str(run)], ["--labels", "only-one"]
    elif case == "cloud":
        extra = ["--cloud", "0"]
    elif case == "unwritable":
        (tmp_path / "a-file").write_text("")
        figure = tmp_path / "a-file" / "figure.png"
    before = sorted(p.name for p in (run / "results").iterdir())
    assert main([*runs, "--output", str(figure), "--val-images", "16", "--no-progress", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("focusformer-plot: error: ") and expected in err
    assert not figure.exists()
    assert sorted(p.name for p in (run / "results").iterdir()) == before
