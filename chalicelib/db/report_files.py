"""Where the reconciliation's CSV files go: the S3 bucket ``REPORTS_BUCKET`` in AWS
(``reconciliation/<day>.csv``), the folder ``<data dir>/reports/<day>.csv`` locally.
A file with the same content is not written again."""
from __future__ import annotations

import functools
from pathlib import Path

PREFIX = "reconciliation/"


class LocalReportFiles:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def write(self, day: str, text: str) -> str:
        import os

        path = self.folder / f"{day}.csv"
        try:
            if path.read_text(encoding="utf-8") == text:
                return str(path)
        except FileNotFoundError:
            pass
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)       # a reader never sees half a file
        return str(path)


class S3ReportFiles:
    def __init__(self, bucket: str, region: str):
        self.bucket, self.region = bucket, region

    @functools.cached_property
    def _client(self):
        import boto3

        return boto3.client("s3", region_name=self.region)

    def write(self, day: str, text: str) -> str:
        key = f"{PREFIX}{day}.csv"
        self._client.put_object(Bucket=self.bucket, Key=key, Body=text.encode("utf-8"),
                                ContentType="text/csv; charset=utf-8")
        return f"s3://{self.bucket}/{key}"


def default_report_files():
    from chalicelib.config import settings

    s = settings()
    if s.reports_bucket:
        return S3ReportFiles(s.reports_bucket, s.region)
    return LocalReportFiles((s.data_dir or Path(".local").resolve()) / "reports")
