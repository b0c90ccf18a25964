"""MovieLens releases from GroupLens: download with checksum, local cache, native formats.

Harper & Konstan, "The MovieLens Datasets: History and Context", ACM TiiS 5(4), 2015.
The datasets' license forbids redistribution: they are downloaded by each user, never shipped.

A zip downloaded by other means can be placed in the cache folder (``cache_dir()``, overridden by
``RECSYS_CACHE_DIR``) under its official file name; it is then used without any network access.
``RECSYS_MOVIELENS_URL`` replaces the GroupLens base URL (a mirror, or a local server in tests);
the zips and their ``.md5`` files are looked up under it by their official names.
"""

from __future__ import annotations

import hashlib
import io
import logging
import socket
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recsys_core.data.schema import Collected, normalize_interactions, normalize_items
from recsys_core.exceptions import DataError, DataSourceError
from recsys_core.redaction import redact
from recsys_core.settings import get_settings

log = logging.getLogger(__name__)

BASE_URL = "https://files.grouplens.org/datasets/movielens/"


def base_url() -> str:
    """Where the releases are downloaded from: ``RECSYS_MOVIELENS_URL`` or GroupLens."""
    url = get_settings().movielens.url or BASE_URL
    return url if url.endswith("/") else url + "/"


@dataclass(frozen=True)
class Release:
    """One MovieLens release: its zip, checksum, folder inside the zip and file formats."""

    zip_name: str
    md5: str | None  # None: checked against the .md5 file GroupLens publishes beside the zip
    folder: str
    ratings: str
    movies: str
    layout: str  # "100k" (u.data/u.item), "dat" (:: separated) or "csv" (with header)
    rating_scale: tuple[float, float] = (1.0, 5.0)

    @property
    def url(self) -> str:
        return base_url() + self.zip_name


RELEASES: dict[str, Release] = {
    "100k": Release(
        "ml-100k.zip", "0e33842e24a9c977be4e0107933c0723", "ml-100k", "u.data", "u.item", "100k"
    ),
    "1m": Release(
        "ml-1m.zip", "c4d9eecfca2ab87c1945afe126590906", "ml-1m", "ratings.dat", "movies.dat", "dat"
    ),
    "10m": Release(
        "ml-10m.zip", None, "ml-10M100K", "ratings.dat", "movies.dat", "dat", (0.5, 5.0)
    ),
    "20m": Release(
        "ml-20m.zip",
        "cd245b17a1ae2cc31bb14903e1204af3",
        "ml-20m",
        "ratings.csv",
        "movies.csv",
        "csv",
        (0.5, 5.0),
    ),
    "25m": Release(
        "ml-25m.zip",
        "6b51fb2759a8657d3bfcbfc42b592ada",
        "ml-25m",
        "ratings.csv",
        "movies.csv",
        "csv",
        (0.5, 5.0),
    ),
    "32m": Release("ml-32m.zip", None, "ml-32m", "ratings.csv", "movies.csv", "csv", (0.5, 5.0)),
    "latest-small": Release(
        "ml-latest-small.zip",
        None,
        "ml-latest-small",
        "ratings.csv",
        "movies.csv",
        "csv",
        (0.5, 5.0),
    ),
}

# the genres of MovieLens (ML-100K's u.item columns after "unknown"; ML-1M and later use the same
# names), which the synthetic generator draws from too
GENRES = (
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
_U_ITEM_GENRES = ("unknown", *GENRES)


def cache_dir() -> Path:
    """Folder where MovieLens zips are cached (``RECSYS_CACHE_DIR`` or ``~/.cache/recsys``)."""
    root = get_settings().movielens.cache_dir or Path.home() / ".cache" / "recsys"
    return Path(root) / "movielens"


def release(name: str) -> Release:
    key = name.removeprefix("movielens-").removeprefix("ml-")
    if key not in RELEASES:
        raise DataSourceError(
            f"unknown MovieLens release {name!r}; available: "
            + ", ".join(f"movielens-{k}" for k in RELEASES)
        )
    return RELEASES[key]


def fetch(name: str, *, timeout: float = 10.0) -> Path:
    """Return the path of the release's zip, downloading and checking it if not cached."""
    rel = release(name)
    target = cache_dir() / rel.zip_name
    if target.exists():
        _check_md5(target, rel, timeout=timeout, cached=True)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _check_reachable(rel, target, timeout)
    log.info("downloading %s to %s", redact(rel.url), target)
    partial = target.with_suffix(".zip.part")
    try:
        with urllib.request.urlopen(rel.url, timeout=timeout) as resp, open(partial, "wb") as out:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise _offline_error(rel, target, exc) from exc
    try:
        _check_md5(partial, rel, timeout=timeout, cached=False)
    except DataSourceError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return target


def load(name: str, *, timeout: float = 10.0) -> Collected:
    """Download (or take from the cache) and read a MovieLens release."""
    rel = release(name)
    path = fetch(name, timeout=timeout)
    key = name.removeprefix("movielens-").removeprefix("ml-")  # "ml-100k" is movielens-100k
    return read_zip(path, rel, source=f"movielens-{key}")


def read_zip(path: Path, rel: Release, source: str = "") -> Collected:
    """Read ratings and movies from a release zip in its native format."""
    with zipfile.ZipFile(path) as zf:
        ratings_raw = zf.read(f"{rel.folder}/{rel.ratings}")
        movies_raw = zf.read(f"{rel.folder}/{rel.movies}")
    ratings, movies = parse(rel.layout, ratings_raw, movies_raw)
    return Collected(ratings, movies, source=source or rel.zip_name, rating_scale=rel.rating_scale)


def parse(layout: str, ratings_raw: bytes, movies_raw: bytes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse the native files of one layout into canonical tables."""
    names = ["user", "item", "rating", "timestamp"]
    if layout == "100k":
        ratings = pd.read_csv(io.BytesIO(ratings_raw), sep="\t", header=None, names=names)
        movies = pd.read_csv(
            io.BytesIO(movies_raw),
            sep="|",
            header=None,
            encoding="latin-1",
            names=["item", "title", "release", "video", "url", *_U_ITEM_GENRES],
        )
        flags = movies[list(_U_ITEM_GENRES)].to_numpy(dtype=bool)
        movies["genres"] = [
            "|".join(g for g, f in zip(_U_ITEM_GENRES, row, strict=True) if f) for row in flags
        ]
    elif layout == "dat":
        ratings = _read_double_colon(ratings_raw, names)
        movies = _read_double_colon(movies_raw, ["item", "title", "genres"], encoding="latin-1")
    elif layout == "csv":
        ratings = pd.read_csv(io.BytesIO(ratings_raw))
        ratings = ratings.rename(columns={"userId": "user", "movieId": "item"})
        movies = pd.read_csv(io.BytesIO(movies_raw)).rename(columns={"movieId": "item"})
    else:
        raise DataError(f"unknown MovieLens layout {layout!r}")
    return normalize_interactions(ratings, origin="MovieLens ratings"), normalize_items(movies)


def _read_double_colon(raw: bytes, names: list[str], encoding: str = "utf-8") -> pd.DataFrame:
    # '::' is a multi-character separator; splitting by hand is much faster than engine="python"
    text = raw.decode(encoding, errors="replace")
    rows = [line.split("::", len(names) - 1) for line in text.splitlines() if line]
    return pd.DataFrame(rows, columns=names)


def _check_reachable(rel: Release, target: Path, timeout: float) -> None:
    url = urllib.parse.urlparse(rel.url)
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((url.hostname or "", port), timeout=min(timeout, 5.0)).close()
    except OSError as exc:
        raise _offline_error(rel, target, exc) from exc


def _offline_error(rel: Release, target: Path, exc: BaseException) -> DataSourceError:
    return DataSourceError(
        f"cannot download {redact(rel.url)} ({redact(str(exc))}). If this machine is offline, "
        f"download the zip elsewhere and place it at {target}, or use --source synthetic (a "
        "realistic generated data set that needs no network)."
    )


def _check_md5(path: Path, rel: Release, *, timeout: float, cached: bool) -> None:
    expected = rel.md5 or _published_md5(rel, timeout)
    if expected is None:
        log.warning("no checksum known for %s and none could be fetched; not verified", path)
        return
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        where = "the cached file" if cached else "the download"
        raise DataSourceError(
            f"checksum mismatch for {where} {path}: md5 {digest.hexdigest()}, expected {expected}. "
            f"Delete it and download {redact(rel.url)} again."
        )


def _published_md5(rel: Release, timeout: float) -> str | None:
    try:
        with urllib.request.urlopen(rel.url + ".md5", timeout=timeout) as resp:
            text = resp.read().decode("ascii", errors="replace")
    except (urllib.error.URLError, OSError):
        return None
    token = text.strip().split()[0] if text.strip() else ""
    return token.lower() if len(token) == 32 else None
