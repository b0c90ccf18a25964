"""Local interaction files in every supported format, their errors, and S3 objects over HTTP."""

import re
import socket

import numpy as np
import pandas as pd
import pytest

from recsys_core.data import files
from recsys_core.exceptions import ConfigError, DataError, DataSourceError

EXPECTED = pd.DataFrame(
    {
        "user": ["1", "1", "2"],
        "item": ["10", "20", "10"],
        "rating": [4.0, 3.5, 5.0],
        "timestamp": np.array([100, 200, 300], dtype=np.int64),
    }
)


def _write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _assert_expected(frame, expected=EXPECTED):
    assert list(frame.columns) == ["user", "item", "rating", "timestamp"]
    assert frame["user"].tolist() == expected["user"].tolist()
    assert frame["item"].tolist() == expected["item"].tolist()
    assert frame["rating"].tolist() == expected["rating"].tolist()
    assert frame["timestamp"].tolist() == expected["timestamp"].tolist()
    assert frame["rating"].dtype == np.float64
    assert frame["timestamp"].dtype == np.int64


# ---------------------------------------------------------------- formats


def test_csv_with_canonical_header(tmp_path):
    path = _write(
        tmp_path, "r.csv", "user,item,rating,timestamp\n1,10,4,100\n1,20,3.5,200\n2,10,5,300\n"
    )
    _assert_expected(files.read_table(path))


def test_csv_with_movielens_header_aliases(tmp_path):
    path = _write(
        tmp_path,
        "ratings.csv",
        "userId,movieId,rating,timestamp\n1,10,4.0,100\n1,20,3.5,200\n2,10,5.0,300\n",
    )
    _assert_expected(files.read_table(path))


def test_tsv_without_header_like_u_data(tmp_path):
    path = _write(tmp_path, "u.data", "1\t10\t4\t100\n1\t20\t3.5\t200\n2\t10\t5\t300\n")
    _assert_expected(files.read_table(path))


def test_double_colon_file_like_ratings_dat(tmp_path):
    path = _write(tmp_path, "ratings.dat", "1::10::4::100\n1::20::3.5::200\n2::10::5::300\n")
    _assert_expected(files.read_table(path))


def test_parquet(tmp_path):
    path = tmp_path / "r.parquet"
    EXPECTED.to_parquet(path, index=False)
    _assert_expected(files.read_table(path))


def test_parquet_detected_by_content_whatever_the_name(tmp_path):
    path = tmp_path / "ratings.bin"
    EXPECTED.to_parquet(path, index=False)
    _assert_expected(files.read_table(path))


def test_column_mapping(tmp_path):
    path = _write(tmp_path, "r.csv", "u,i,r,when\n1,10,4,100\n1,20,3.5,200\n2,10,5,300\n")
    mapping = files.parse_column_map("user=u, item=i,rating=r,timestamp=when")
    assert mapping == {"user": "u", "item": "i", "rating": "r", "timestamp": "when"}
    _assert_expected(files.read_table(path, mapping))


def test_implicit_feedback_without_ratings_gets_ones(tmp_path):
    path = _write(tmp_path, "clicks.csv", "user_id,item_id\na,x\nb,y\n")
    frame = files.read_table(path)
    assert frame["rating"].tolist() == [1.0, 1.0]
    assert frame["timestamp"].tolist() == [0, 0]


def test_load_file_wraps_the_frame(tmp_path):
    path = _write(tmp_path, "r.csv", "user,item,rating\n1,10,4\n")
    collected = files.load_file(path, rating_scale=(0.5, 5.0))
    assert collected.source == str(path)
    assert collected.rating_scale == (0.5, 5.0)
    assert collected.items is None
    assert len(collected.interactions) == 1


# ---------------------------------------------------------------- errors


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(DataSourceError, match="file not found") as err:
        files.read_table(path)
    assert str(path) in str(err.value)


def test_directory_is_refused(tmp_path):
    with pytest.raises(DataSourceError, match="is a folder"):
        files.read_table(tmp_path)


@pytest.mark.parametrize("content", [b"", b"  \n\n"])
def test_empty_file(tmp_path, content):
    path = _write(tmp_path, "empty.csv", content)
    with pytest.raises(DataError, match="is empty"):
        files.read_table(path)


def test_binary_garbage(tmp_path):
    garbage = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path = _write(tmp_path, "ratings.csv", b"\x00" + garbage)
    with pytest.raises(DataError, match="binary content"):
        files.read_table(path)


def test_garbage_named_parquet(tmp_path):
    path = _write(tmp_path, "ratings.parquet", b"not a parquet file\n")
    with pytest.raises(DataError, match="cannot read .* as CSV, TSV"):
        files.read_table(path)


def test_wrong_columns_are_listed_with_a_mapping_hint(tmp_path):
    path = _write(tmp_path, "r.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(DataError) as err:
        files.read_table(path)
    message = str(err.value)
    assert "['a', 'b', 'c']" in message
    assert "no 'user' and no 'item' column" in message
    assert "user=userId,item=movieId" in message


def test_mapping_to_a_missing_column(tmp_path):
    path = _write(tmp_path, "r.csv", "u,i\n1,2\n")
    with pytest.raises(DataError, match=r"column 'rating_col' \(mapped to 'rating'\)"):
        files.read_table(path, {"rating": "rating_col"})


def test_non_numeric_ratings_show_examples(tmp_path):
    path = _write(tmp_path, "r.csv", "user,item,rating\n1,10,4\n1,11,good\n2,10,bad\n3,1,5\n")
    with pytest.raises(DataError) as err:
        files.read_table(path)
    message = str(err.value)
    assert "'rating'" in message
    assert "2 value(s)" in message
    assert "'good'" in message and "'bad'" in message


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("user", "bad column mapping 'user'"),
        ("user=a,item", "bad column mapping 'item'"),
        ("user=a,movie=b", "unknown canonical column 'movie'"),
    ],
)
def test_bad_mapping_spec(spec, match):
    with pytest.raises(DataError, match=match):
        files.parse_column_map(spec)


def test_empty_mapping_spec():
    assert files.parse_column_map(None) == {}
    assert files.parse_column_map("") == {}
    assert files.parse_column_map({"user": "uid"}) == {"user": "uid"}


@pytest.mark.parametrize("uri", ["ratings.csv", "s3://", "s3://bucket", "s3://bucket/"])
def test_bad_s3_uri(uri):
    with pytest.raises(DataError, match="s3://"):
        files.split_s3_uri(uri)


# ---------------------------------------------------------------- S3 over HTTP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3(s3_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "RECSYS_S3_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    client = files.s3_client(s3_endpoint)
    if "ratings" not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket="ratings")
    return s3_endpoint


def test_load_s3_csv_object(s3):
    body = b"userId,movieId,rating,timestamp\n1,10,4,100\n1,20,3.5,200\n2,10,5,300\n"
    files.write_s3_bytes("s3://ratings/ml/ratings.csv", body, endpoint_url=s3)
    collected = files.load_s3("s3://ratings/ml/ratings.csv", endpoint_url=s3)
    _assert_expected(collected.interactions)
    assert collected.source == "s3://ratings/ml/ratings.csv"


def test_load_s3_endpoint_from_the_environment(s3, monkeypatch):
    files.write_s3_bytes("s3://ratings/env.csv", b"user,item\n1,2\n", endpoint_url=s3)
    monkeypatch.setenv("RECSYS_S3_ENDPOINT_URL", s3)
    assert len(files.load_s3("s3://ratings/env.csv").interactions) == 1


def test_load_s3_parquet_object_with_mapping(s3):
    frame = EXPECTED.rename(columns={"user": "u", "item": "i"})
    path_bytes = frame.to_parquet(index=False)
    files.write_s3_bytes("s3://ratings/r.parquet", path_bytes, endpoint_url=s3)
    collected = files.load_s3("s3://ratings/r.parquet", {"user": "u", "item": "i"}, endpoint_url=s3)
    _assert_expected(collected.interactions)


def test_load_s3_missing_key_names_uri_and_endpoint(s3):
    with pytest.raises(DataSourceError) as err:
        files.load_s3("s3://ratings/missing.csv", endpoint_url=s3)
    message = str(err.value)
    assert "s3://ratings/missing.csv does not exist" in message
    assert s3 in message


def test_load_s3_missing_bucket(s3):
    with pytest.raises(DataSourceError, match="does not exist"):
        files.load_s3("s3://no-such-bucket/r.csv", endpoint_url=s3)


def test_load_s3_bad_content_names_the_uri(s3):
    files.write_s3_bytes("s3://ratings/bad.csv", b"user,item,rating\n1,2,lots\n", endpoint_url=s3)
    with pytest.raises(DataError) as err:
        files.load_s3("s3://ratings/bad.csv", endpoint_url=s3)
    # the message names the object, not the temporary copy it was read from
    assert "s3://ratings/bad.csv" in str(err.value)
    assert "'lots'" in str(err.value)


def test_load_s3_unreachable_endpoint(s3):
    endpoint = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    with pytest.raises(DataSourceError) as err:
        files.load_s3("s3://ratings/ratings.csv", endpoint_url=endpoint)
    message = str(err.value)
    assert f"cannot reach S3 at {endpoint}" in message
    assert "s3://ratings/ratings.csv" in message


class SilentEndpoint:
    """A socket that accepts connections and never answers (a hung S3 or a wrong port)."""

    def __init__(self):
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.connections = []
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self):
        for conn in self.connections:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    endpoint = SilentEndpoint()
    yield endpoint
    endpoint.close()


def test_default_s3_limits_bound_a_silent_endpoint_under_a_minute(monkeypatch):
    for name in ("CONNECT_TIMEOUT", "READ_TIMEOUT", "MAX_ATTEMPTS"):
        monkeypatch.delenv(f"RECSYS_S3_{name}", raising=False)
    settings = files.S3Settings()
    assert (settings.connect_timeout, settings.read_timeout, settings.max_attempts) == (5, 5, 3)
    assert settings.worst_case_seconds() == 3 * (5 + 5) + 1 + 2
    assert settings.worst_case_seconds() < 60


def test_silent_s3_endpoint_fails_after_the_configured_attempts(silent, monkeypatch):
    monkeypatch.setenv("RECSYS_S3_READ_TIMEOUT", "0.5")
    monkeypatch.setenv("RECSYS_S3_MAX_ATTEMPTS", "2")
    with pytest.raises(DataSourceError) as err:
        files.load_s3("s3://ratings/r.csv", endpoint_url=silent.url)
    message = str(err.value)
    assert f"cannot reach S3 at {silent.url} to read s3://ratings/r.csv" in message
    assert "Read timeout" in message and "2 attempt(s)" in message
    assert "RECSYS_S3_READ_TIMEOUT" in message
    assert len(silent.connections) == 2  # the settings reach botocore: two attempts, no more


def test_s3_messages_never_carry_credentials(silent, monkeypatch):
    monkeypatch.setenv("RECSYS_S3_READ_TIMEOUT", "0.2")
    monkeypatch.setenv("RECSYS_S3_MAX_ATTEMPTS", "1")
    endpoint = silent.url.replace("http://", "http://admin:hunter2@")
    with pytest.raises(DataSourceError) as err:
        files.load_s3("s3://ratings/r.csv", endpoint_url=endpoint)
    assert "hunter2" not in str(err.value) and "testing" not in str(err.value)


@pytest.mark.parametrize("value", ["0", "-1", "abc"])
def test_bad_s3_settings_are_refused(monkeypatch, value):
    monkeypatch.setenv("RECSYS_S3_READ_TIMEOUT", value)
    with pytest.raises(
        ConfigError, match=re.escape(f"bad setting: RECSYS_S3_READ_TIMEOUT={value!r}")
    ):
        files.s3_client("http://127.0.0.1:9")


def test_parquet_text_ids_are_read_once_per_distinct_id(tmp_path):
    path = tmp_path / "r.parquet"
    pd.DataFrame(
        {
            "userId": ["u1", "u2", "u1", None],
            "movieId": ["10", "10", "7", "7"],
            "rating": [4.0, 3.0, 5.0, 2.0],
            "timestamp": [1, 2, 3, 4],
        }
    ).to_parquet(path)
    frame = files.read_table(path)
    assert frame["user"].dtype == object and frame["item"].dtype == object
    assert frame["user"].tolist() == ["u1", "u2", "u1", None]
    assert frame["item"].tolist() == ["10", "10", "7", "7"]
    # the rows of one id share its string
    assert frame["item"].iloc[0] is frame["item"].iloc[1]


@pytest.mark.parametrize("name", ["r.parquet", "r.csv"])
def test_categorical_ids_carry_the_same_text_ids(tmp_path, name):
    path = tmp_path / name
    with_missing = EXPECTED.assign(user=["1", None, "2"], item=[10, 20, 10])
    if name.endswith(".parquet"):
        with_missing.assign(item=with_missing["item"].astype(str)).to_parquet(path, index=False)
    else:
        with_missing.to_csv(path, index=False)
    plain = files.read_table(path)
    coded = files.read_table(path, categorical_ids=True)
    for col in ("user", "item"):
        assert isinstance(coded[col].dtype, pd.CategoricalDtype)
        # the same ids, as text, a missing one missing (code -1) for validation to report
        assert coded[col].astype(object).where(coded[col].notna(), None).tolist() == (
            plain[col].tolist()
        )
    assert coded["user"].cat.codes.tolist()[1] == -1
    assert coded["item"].tolist() == ["10", "20", "10"]
    pd.testing.assert_frame_equal(coded[["rating", "timestamp"]], plain[["rating", "timestamp"]])
