"""Download a dataset that is not on disk (torchvision), leaving nothing behind on failure.

torchvision downloads into a temporary folder, and the four files are moved into place only
once all four are there: a failed download leaves no empty folders (torchvision makes its
folders before it fetches) and no half file.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
from pathlib import Path
from urllib.error import URLError

from search.engine.datasets import DATASETS, RAW_FILES, DataConfig, expected, raw_folder
from search.errors import DataError


def _download_failure(e: BaseException) -> str:
    """A short, non-empty reason for a failed download. torchvision's own message is a line
    ending in ':' ("Error downloading train-images-idx3-ubyte.gz:") with each mirror's error on
    the lines after it, so the reason is that line and the last error, and a network error gets
    the likely cause."""
    chain: list[BaseException] = []
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__ or e.__context__
    lines = [line.strip() for x in chain for line in str(x).splitlines() if line.strip()]
    head = lines[0].removeprefix("Error downloading ").rstrip(":") if lines else ""
    details = [line for line in lines[1:] if not line.endswith(":")]
    # urllib wraps the socket's error as "<urlopen error [Errno -2] Name or service not known>"
    detail = re.sub(r"^<urlopen error (.*)>$", r"\1", details[-1]) if details else ""
    reason = ": ".join(part for part in (head, detail) if part) or type(chain[0]).__name__
    offline = any(isinstance(x, (URLError, ConnectionError, TimeoutError)) for x in chain)
    if offline or "urlopen error" in str(chain[0]):
        reason += "; no network?"
    return reason


def download(cfg: DataConfig) -> None:
    """Download the dataset's four files into DATA_DIR/MNIST/raw. torchvision downloads into a
    temporary folder, and the files are moved into place only once all four are there: a failed
    download leaves no empty folders behind (torchvision makes its folders before it fetches)."""
    raw = raw_folder(cfg)
    # torchvision only here: importing it costs seconds per process (it pulls in torch._dynamo).
    try:
        import torchvision.datasets as tvd
    except ImportError:
        raise DataError(
            f"{cfg.dataset} is not in {expected(cfg)}, and downloading it needs torchvision: "
            "pip install 'search[download]', or point --data-dir at a copy"
        ) from None

    cls = getattr(tvd, DATASETS[cfg.dataset][0])
    with tempfile.TemporaryDirectory(prefix="search-download-") as tmp:
        try:
            # torchvision prints download progress; our caller wants one line or nothing.
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                cls(tmp, train=True, download=True)  # fetches all four files
        except Exception as e:  # noqa: BLE001 - urllib, torchvision and gzip raise many kinds
            raise DataError(
                f"data_dir {cfg.data_dir}: {cfg.dataset} is not in {expected(cfg)}, and the "
                f"download failed ({_download_failure(e)}); point --data-dir (or "
                f"SEARCH_DATA_DIR) at the folder that holds {DATASETS[cfg.dataset][1]}/raw"
            ) from e
        _install(Path(tmp) / DATASETS[cfg.dataset][1] / "raw", raw, cfg)


def _install(downloaded: Path, raw: Path, cfg: DataConfig) -> None:
    """Move the downloaded files into ``raw``, each under a temporary name first so that no
    reader ever sees half a file; on failure, remove what this made."""
    made: list[Path] = []  # removed again, newest first, if a step fails
    try:
        missing: list[Path] = []
        folder = raw
        while not os.path.exists(folder):
            missing.insert(0, folder)
            folder = folder.parent
        for path in missing:
            path.mkdir()
            made.append(path)
        for name in RAW_FILES:
            part, target = raw / f".{name}.part", raw / name
            made.append(part)
            shutil.move(downloaded / name, part)
            existed = os.path.exists(target)
            os.replace(part, target)
            made.pop()
            if not existed:  # a file of an incomplete set is replaced, never removed
                made.append(target)
    except OSError as e:
        for path in reversed(made):
            with contextlib.suppress(OSError):
                if path.is_dir():
                    path.rmdir()
                else:
                    path.unlink()
        raise DataError(
            f"data_dir {cfg.data_dir}: {cfg.dataset} was downloaded but cannot be written "
            f"into {raw} ({(e.strerror or type(e).__name__).lower()}); point --data-dir (or "
            "SEARCH_DATA_DIR) at a folder you can write to"
        ) from e
