"""The gallery's machinery: the bootstrap claim checks, the registry, the zero-init experiment,
the pages, and `trainlab reproduce` (list, --json, and an interrupted `all` resuming)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from trainlab import reproduce as rep
from trainlab.reproduce.checks import all_hold, diff_ci, greater, less
from trainlab.reproduce.gallery import read_summary, write_gallery
from trainlab.reproduce.sweep import trained_model
from trainlab.reproduce.zero_init_symmetry import unit_spread
from trainlab.store import Store


def trainlab(*args):
    return subprocess.run([sys.executable, "-m", "trainlab.cli", *args], capture_output=True, text=True, timeout=600)


def test_diff_ci_is_the_percentile_bootstrap_of_independently_resampled_groups():
    a, b = [0.71, 0.69, 0.74, 0.70], [0.61, 0.66, 0.60]
    diff, (lo, hi) = diff_ci(a, b, n_resamples=20_000, seed=3)
    assert diff == pytest.approx(np.mean(a) - np.mean(b))
    # an independent loop: resample each group with replacement, take the 2.5% and 97.5% quantiles
    rng = np.random.default_rng(123)
    draws = [rng.choice(a, len(a)).mean() - rng.choice(b, len(b)).mean() for _ in range(20_000)]
    ref_lo, ref_hi = np.quantile(draws, [0.025, 0.975])
    assert lo == pytest.approx(ref_lo, abs=0.004) and hi == pytest.approx(ref_hi, abs=0.004)
    assert diff_ci([1.0, None, float("nan")], [0.0, 0.0])[0] == pytest.approx(1.0)  # missing values dropped
    assert np.isnan(diff_ci([], [1.0])[0])


def test_greater_and_less_hold_only_when_the_whole_interval_clears_the_margin():
    high, low = [10.0, 10.2, 9.9], [1.0, 1.1, 0.9]
    assert greater(high, low, margin=5).holds and not greater(high, low, margin=9.5).holds
    assert less(low, high, margin=5).holds and not less(high, low).holds
    noisy_a, noisy_b = [0.0, 10.0, 0.0, 10.0], [4.0, 6.0, 5.0, 5.0]  # equal means, wide spread
    assert not greater(noisy_a, noisy_b).holds and not less(noisy_a, noisy_b).holds
    ok, text = all_hold(greater(high, low, what="x"), less(high, low, what="y"))
    assert not ok and "x = " in text and "y = " in text and "not <" in text


def test_registry_has_every_experiment_of_the_issue_with_claim_and_source():
    assert len(rep.NAMES) == 20 and len(set(rep.NAMES)) == 20
    for name in rep.NAMES:
        exp = rep.get(name)
        assert exp.name == name and exp.claim and exp.source
    with pytest.raises(Exception, match="init-depth"):
        rep.get("init-dept")
    assert rep.seeds_for(rep.get("init-depth"), None, True) == 2 and rep.seeds_for(rep.get("init-depth"), 5, False) == 5
    with pytest.raises(ValueError, match="--seeds"):
        rep.seeds_for(rep.get("init-depth"), 0, False)


def test_unit_spread_by_hand():
    w = np.array([[1.0, 0.0], [3.0, 0.0]])  # mean row (2, 0); spreads 1 and 1; mean norm 2
    import torch

    assert unit_spread(torch.tensor(w)) == pytest.approx(0.5)
    assert unit_spread(torch.ones(4, 3)) == 0.0


def test_zero_init_symmetry_quick_holds_and_its_page_is_written(tmp_path):
    store = Store(tmp_path / "r.db")
    exp, outcome, seeds = rep.run_experiment("zero-init-symmetry", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    assert outcome.holds and seeds == 2
    assert max(f["unit_spread"]["zeros"]) < 1e-6 and min(f["unit_spread"]["xavier_normal"]) > 0.1
    runs = store.list_runs(group="reproduce/zero-init-symmetry/quick")
    assert len(runs) == 2 * seeds
    for r in runs:  # each seed's net as trained (alone: see the module), from its checkpoint
        assert not r.final.get("population")
        weights = [b.layer.weight.detach().numpy() for b in trained_model(store, r).blocks]
        scheme = r.name.rsplit("/", 1)[1]
        if scheme == "zeros":  # every hidden unit's incoming weights exactly equal, and not zero
            assert all(np.array_equal(w, np.broadcast_to(w[:1], w.shape)) for w in weights)
        assert f["weight_norm"][scheme][r.seed] == pytest.approx(min(np.linalg.norm(w) for w in weights), rel=1e-6)
        assert f["val_acc"][scheme][r.seed] == pytest.approx(r.final["val_acc"])
    assert min(f["weight_norm"]["zeros"]) > 1e-3
    index = write_gallery([(exp, outcome, seeds, True)], tmp_path / "g")
    page = (tmp_path / "g" / "zero-init-symmetry.html").read_text()
    assert "holds" in page and "quick version" in page and 'href="index.html"' in page
    assert 'href="zero-init-symmetry.html"' in index.read_text()
    assert all('http-equiv="Content-Security-Policy"' in text for text in (page, index.read_text()))
    assert read_summary(tmp_path / "g", "zero-init-symmetry")["figures"]["check"]["holds"] is True


def test_cli_list_json_and_an_interrupted_all_resumes(tmp_path):
    listing = trainlab("reproduce", "--list")
    assert listing.returncode == 0 and all(n in listing.stdout for n in rep.NAMES)

    gallery, db = tmp_path / "g", str(tmp_path / "r.db")
    gallery.mkdir()
    # As if `reproduce all --quick` had finished every experiment but one before it was killed.
    for n in rep.NAMES:
        if n != "zero-init-symmetry":
            done = {
                "name": n,
                "claim": rep.get(n).claim,
                "source": "s",
                "holds": False,
                "seeds": 2,
                "quick": True,
                "statement": "earlier",
                "figures": {"x": 1},
            }
            (gallery / f"{n}.json").write_text(json.dumps(done))
    r = trainlab("reproduce", "all", "--quick", "--json", "-o", str(gallery), "--store", db)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["name"] for o in lines] == list(rep.NAMES)
    ran = next(o for o in lines if o["name"] == "zero-init-symmetry")
    assert ran["holds"] is True and ran["seeds"] == 2 and "unit_spread" in ran["figures"]
    assert all(o["figures"] == {"x": 1} for o in lines if o["name"] != "zero-init-symmetry")
    assert r.stderr.count("skipped (--rerun to run it again)") == 19
    assert len(Store(db).list_runs()) == 4  # only the missing experiment trained
    index = (gallery / "gallery.html").read_text()
    assert all(f'href="{n}.html"' in index for n in rep.NAMES) and "1 of 20 hold here" in index


def test_every_experiment_quotes_its_source_and_has_a_protocol_table_and_its_docs_page_is_current():
    from pathlib import Path

    from trainlab.reproduce.gallery import protocol_markdown, render_page

    docs = Path(__file__).resolve().parents[2] / "docs" / "gallery"
    for name in rep.NAMES:
        exp = rep.get(name)
        assert exp.quote and exp.protocol, name
        assert all(p.aspect and p.ours and p.theirs for p in exp.protocol), name
        assert (docs / f"{name}.md").read_text(encoding="utf-8") == protocol_markdown(exp), (
            f"docs/gallery/{name}.md is stale: run docs/make_gallery_pages.py"
        )
    exp = rep.get("mnist1d-table")
    html = render_page(exp, rep.Outcome(holds=True, statement="s", figures={}), 2, True)
    assert "Protocol: ours beside the source&#x27;s" in html or "Protocol: ours beside the source's" in html
    assert "<blockquote>" in html and "bidirectional GRU" in html and "trainlab&#x27;s loader always shuffles" in html


def test_the_results_table_of_docs_gallery_md_is_written_from_a_runs_json(tmp_path):
    """`docs/make_gallery_pages.py --results DIR` puts each experiment's JSON verdict and
    statement in docs/gallery.md's table, between its markers, and leaves the rest as it was."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "docs" / "make_gallery_pages.py"
    spec = importlib.util.spec_from_file_location("make_gallery_pages", script)
    pages = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pages)
    run = tmp_path / "gallery"
    run.mkdir()
    out = {
        "name": "init-depth",
        "claim": "He | keeps",
        "holds": True,
        "seeds": 3,
        "quick": False,
        "statement": "r = 0.2 < 0.5",
    }
    (run / "init-depth.json").write_text(json.dumps(out))
    page = tmp_path / "gallery.md"
    page.write_text(f"intro\n{pages.START}\nold table\n{pages.END}\nafter\n")
    pages.write_results(run, page)
    text = page.read_text()
    assert text.startswith(f"intro\n{pages.START}\n| experiment |") and text.endswith(f"{pages.END}\nafter\n")
    assert "old table" not in text
    assert "| [`init-depth`](gallery/init-depth.md) | He \\| keeps | 3 | **holds** | r = 0.2 < 0.5 |" in text
    assert "| [`batchnorm`](gallery/batchnorm.md) | | | not run | |" in text
    assert len([line for line in text.splitlines() if line.startswith("| [`")]) == len(rep.NAMES)


def test_a_results_folder_without_any_experiment_is_refused_and_the_page_kept(tmp_path):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "docs" / "make_gallery_pages.py"
    spec = importlib.util.spec_from_file_location("make_gallery_pages", script)
    pages = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pages)
    page = tmp_path / "gallery.md"
    page.write_text(f"{pages.START}\nold table\n{pages.END}\n")
    with pytest.raises(SystemExit, match="holds no experiment's JSON"):
        pages.write_results(tmp_path / "empty", page)
    assert "old table" in page.read_text()


def test_reproduce_refuses_zero_seeds_in_one_line():
    r = subprocess.run(
        [sys.executable, "-m", "trainlab", "reproduce", "init-depth", "--seeds", "0", "--store", ":memory:"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and r.stderr.strip() == "error: --seeds must be >= 1, got 0", r.stderr
