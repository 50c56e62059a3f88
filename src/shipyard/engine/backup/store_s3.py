"""S3-compatible object storage (AWS, SeaweedFS, MinIO, ...) through boto3.

Every object is at most one chunk (a few MiB), sent as one PUT: an object exists whole or not at all, and
memory is bounded by the blobs in flight. botocore retries throttling and connection errors with
exponential backoff and jitter ("standard" mode); what still fails is translated into a ShipyardError that
names the repository and the object. ``cleanup`` aborts multipart uploads left under the prefix (another
tool's, or pgBackRest's, interrupted uploads).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shipyard.errors import BadInput, NotFound, ShipyardError
from shipyard.primitives.spec.backup import BackupSpec, S3Settings

ATTEMPTS = 5


def parse_s3_url(url: str) -> tuple[str, str]:
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise BadInput(f"{url}: expected s3://bucket/prefix")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def credentials(s3: S3Settings, secrets: Mapping[str, str]) -> tuple[str, str]:
    missing = [n for n in (s3.access_key_secret, s3.secret_key_secret) if not secrets.get(n)]
    if missing:
        raise BadInput(f"backup.s3: secret {missing[0]} is not set for this environment "
                       f"(shipyard secrets set --env ENV {missing[0]}=...)")
    return secrets[s3.access_key_secret], secrets[s3.secret_key_secret]


class S3Store:
    def __init__(self, url: str, s3: S3Settings, access_key: str, secret_key: str) -> None:
        self.url = url
        self.bucket, self.prefix = parse_s3_url(url)
        self.settings = s3
        verify: bool | str = (s3.ca_file or True) if s3.verify_tls else False
        self._client: Any = boto3.session.Session().client(
            "s3", endpoint_url=s3.endpoint, region_name=s3.region, aws_access_key_id=access_key,
            aws_secret_access_key=secret_key, verify=verify,
            config=Config(s3={"addressing_style": "path" if s3.path_style else "virtual"},
                          retries={"max_attempts": ATTEMPTS, "mode": "standard"}, connect_timeout=5,
                          read_timeout=60, max_pool_connections=16,
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"))

    @staticmethod
    def from_spec(url: str, spec: BackupSpec, secrets: Mapping[str, str]) -> S3Store:
        if spec.s3 is None:
            raise BadInput(f"{url}: s3:// repositories need [backup.s3] settings")
        return S3Store(url, spec.s3, *credentials(spec.s3, secrets))

    def _fail(self, op: str, name: str, exc: Exception) -> ShipyardError:
        return ShipyardError(f"S3 repository {self.url}: {op} {name} failed after {ATTEMPTS} attempts: {exc}")

    def put(self, name: str, data: bytes) -> None:
        try:
            self._client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("upload of", name, exc) from exc

    def get(self, name: str) -> bytes:
        try:
            body: bytes = self._client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()
            return body
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFound(f"{self.url}: object {name} is missing") from None
            raise self._fail("download of", name, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("download of", name, exc) from exc

    def list(self, prefix: str) -> dict[str, int]:
        out: dict[str, int] = {}
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                           Prefix=self.prefix + prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    out[obj["Key"][len(self.prefix):]] = int(obj["Size"])
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("listing of", prefix or "/", exc) from exc
        return out

    def modified(self, prefix: str) -> dict[str, float]:
        """Object names under ``prefix`` with their upload times (for the WAL archive's RPO)."""
        out: dict[str, float] = {}
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=self.prefix + prefix):
                for obj in page.get("Contents", []):
                    out[obj["Key"][len(self.prefix):]] = obj["LastModified"].timestamp()
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("listing of", prefix, exc) from exc
        return out

    def delete(self, name: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self.prefix + name)
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("deletion of", name, exc) from exc

    def cleanup(self) -> int:
        n = 0
        try:
            resp = self._client.list_multipart_uploads(Bucket=self.bucket, Prefix=self.prefix)
            for up in resp.get("Uploads", []):
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=up["Key"], UploadId=up["UploadId"])
                n += 1
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NotImplemented", "501"):
                raise self._fail("cleanup of multipart uploads in", self.prefix or "/", exc) from exc
        except BotoCoreError as exc:
            raise self._fail("cleanup of multipart uploads in", self.prefix or "/", exc) from exc
        return n

    def close(self) -> None:
        self._client.close()
