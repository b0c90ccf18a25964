"""Session settings without a JVM, and the scratch folder a cluster's executors read from."""

import pytest

from recsys_core.exceptions import ConfigError
from recsys_core.features.matrix import Interactions
from recsys_core.models import create
from recsys_core.spark.session import scratch_dir


def test_scratch_dir_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("RECSYS_SPARK_SCRATCH_DIR", raising=False)
    assert scratch_dir() is None
    monkeypatch.setenv("RECSYS_SPARK_SCRATCH_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(
        ConfigError,
        match=r"RECSYS_SPARK_SCRATCH_DIR='.*nowhere' is not an "
        "existing folder",
    ):
        scratch_dir()


def test_spark_als_hands_its_parquet_over_in_the_scratch_folder(monkeypatch, tmp_path):
    from recsys_core.data.synthetic import config_for, generate

    seen: list[str] = []
    import recsys_core.models.spark_als as spark_als

    real = spark_als.pq.write_table
    monkeypatch.setattr(
        spark_als.pq,
        "write_table",
        lambda table, path: (seen.append(str(path)), real(table, path))[1],
    )
    monkeypatch.setenv("RECSYS_SPARK_SCRATCH_DIR", str(tmp_path))
    data = Interactions.from_frame(generate(config_for("tiny")).interactions)
    model = create("spark-als", {"rank": 2, "maxIter": 2}).fit(data)
    assert model.user_factors_.shape == (data.n_users, 2)
    (path,) = seen
    assert path.startswith(str(tmp_path)) and list(tmp_path.iterdir()) == []  # cleaned up
