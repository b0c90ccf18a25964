"""The benchmark runs end to end on tiny data and prints its table (no timing asserts)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_prints_the_table(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    out = tmp_path / "results.md"
    models = ["bias", "sgd-mf", "item-knn", "ease", "implicit-als", "popularity"]
    assert (
        run.main(["--data", "synthetic:tiny", "--quick", "--models", *models, "--out", str(out)])
        == 0
    )
    text = capsys.readouterr().out
    assert "| model | RMSE | MAE | NDCG@10 | P@10 | fit s | fit ours/peer |" in text
    for name in [*models, "surprise:SVD", "implicit:ALS"]:
        assert f"| {name} |" in text
    assert out.read_text().strip() == text.strip()
