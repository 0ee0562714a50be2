"""An example third-party adapter: a classification of acts as semicolon-separated text.

    #classification;2026-01-15
    nature;1;Délibérations;DE
    matiere;1;Commande publique
    matiere;1.1;Marchés publics

becomes a ``fr.dcant.acts.ClassificationPublished`` pivot. The package declares it under the
``dcant_bus.adapters`` entry point group (see pyproject.toml); ``bus adapt`` then finds it.
"""

from __future__ import annotations

import datetime as dt

from adapters import Pivot, Sniff
from bus import MalformedDocumentError

__all__ = ["FAMILY", "FORMAT", "detect", "to_pivot"]

FORMAT = "classification-csv"
FAMILY = "acts"
MAGIC = b"#classification;"


def detect(sniff: Sniff) -> bool:
    return sniff.head.lstrip(b"\xef\xbb\xbf").startswith(MAGIC)


def to_pivot(data: bytes, *, name: str) -> Pivot:
    try:
        lines = [line.split(";") for line in data.decode("utf-8-sig").splitlines() if line.strip()]
        version = dt.date.fromisoformat(lines[0][1])
        natures = [{"code": int(code), "label": label, "abbreviation": abbr, "attachment_types": []}
                   for kind, code, label, abbr in (row for row in lines[1:] if row[0] == "nature")]
        matieres = []
        for kind, code, label in (row for row in lines[1:] if row[0] == "matiere"):
            parts = code.split(".")
            matieres.append({"code": code, "level": len(parts), "own_code": int(parts[-1]), "label": label,
                             "parent_code": ".".join(parts[:-1]) or None})
    except (UnicodeDecodeError, IndexError, ValueError) as exc:
        raise MalformedDocumentError(f"not a classification CSV: {exc}", document=name,
                                     hint="first line #classification;YYYY-MM-DD, then nature;… and matiere;… rows") from exc
    return Pivot(type="fr.dcant.acts.ClassificationPublished", schema="fr.dcant.acts.Classification",
                 subject=f"classification:{version.isoformat()}", format=FORMAT,
                 data={"version_date": version, "status": "FULL", "natures": natures, "matieres": matieres})
