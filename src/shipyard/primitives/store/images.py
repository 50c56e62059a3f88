"""Images built of releases (``shipyard image build``, revision 0012): the tag, the digest the registry
answered to the push, and the build's timings. Mixed into ``Store``, which provides the connections."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from shipyard.primitives.store import schema as t


@dataclass(frozen=True)
class ImageRec:
    release: str
    image: str  # repository:tag
    digest: str | None  # "sha256:…" once pushed
    commit: str
    dockerfile: str  # "repository" | "generated"
    built_at: float
    build_duration_s: float
    push_duration_s: float | None

    @property
    def repository(self) -> str:
        name, _, tag = self.image.rpartition(":")
        return name if name and "/" not in tag else self.image

    @property
    def pinned(self) -> str:
        """What a deploy references: ``repository@sha256:…`` once pushed, else the tag."""
        return f"{self.repository}@{self.digest}" if self.digest else self.image

    def to_json(self) -> dict[str, Any]:
        return {"release": self.release, "image": self.image, "digest": self.digest, "pinned": self.pinned,
                "commit": self.commit, "dockerfile": self.dockerfile, "built_at": self.built_at,
                "build_duration_s": self.build_duration_s, "push_duration_s": self.push_duration_s}


def _rec(r: sa.Row[Any]) -> ImageRec:
    return ImageRec(r.release, r.image, r.digest, r.commit_sha, r.dockerfile, r.built_at, r.build_duration_s,
                    r.push_duration_s)


class ImageStore:
    if TYPE_CHECKING:
        def _read(self) -> AbstractContextManager[sa.Connection]: ...

        def _write(self) -> AbstractContextManager[sa.Connection]: ...

    def put_image(self, rec: ImageRec) -> None:
        """Record (or replace: a rebuild of the same release) the image of ``rec.release``."""
        with self._write() as conn:
            conn.execute(t.release_images.delete().where(t.release_images.c.release == rec.release))
            conn.execute(t.release_images.insert().values(
                release=rec.release, image=rec.image, digest=rec.digest, commit_sha=rec.commit,
                dockerfile=rec.dockerfile, built_at=rec.built_at, build_duration_s=rec.build_duration_s,
                push_duration_s=rec.push_duration_s))

    def get_image(self, release: str) -> ImageRec | None:
        with self._read() as conn:
            row = conn.execute(t.release_images.select().where(t.release_images.c.release == release)).first()
        return _rec(row) if row is not None else None

    def images_of_commit(self, sha: str) -> list[ImageRec]:
        """Newest first."""
        q = (t.release_images.select().where(t.release_images.c.commit_sha == sha)
             .order_by(t.release_images.c.built_at.desc()))
        with self._read() as conn:
            return [_rec(r) for r in conn.execute(q).all()]
