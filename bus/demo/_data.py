"""Fictional data for the demo: a commune, its partners and suppliers, with valid identifiers.

Nothing here names a real organisation: SIREN/SIRET numbers are generated to pass the Luhn
check INSEE uses, in a range that no register entry is known to use, and names are invented.
"""

from __future__ import annotations

import json

__all__ = ["ADMINISTRATIONS", "COMMUNE", "COMMUNE_SIRET", "COMPANIES", "DEPARTMENT", "REVIEW_BODY_SIRET", "company_siret",
           "luhn_complete", "sirene_documents"]


def luhn_complete(digits: str) -> str:
    """``digits`` followed by the Luhn check digit that makes the whole number valid."""
    total = 0
    for i, ch in enumerate(reversed(digits + "0")):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return digits + str((10 - total % 10) % 10)


def _siren(seed: str) -> str:
    return luhn_complete(seed)


def _siret(siren: str, nic_seed: str) -> str:
    """A SIRET (SIREN + NIC) that passes the Luhn check."""
    return luhn_complete(siren + nic_seed)


COMMUNE = _siren("21999001")
COMMUNE_SIRET = _siret(COMMUNE, "0001")
DEPARTMENT = "045"
#: the administrative court that hears the procurement's appeals (an eForms review body, no bus participant)
REVIEW_BODY_SIRET = _siret(_siren("13000995"), "0001")
ADMINISTRATIONS = {
    "commune": {"siren": COMMUNE, "name": "Commune de Saint-Exemple-sur-Loire", "system": "webdelib"},
    "prefecture": {"siren": _siren("13000999"), "name": "Préfecture de l'Exemple", "system": "actes"},
    "dgfip": {"siren": _siren("13000998"), "name": "Trésorerie de Saint-Exemple", "system": "helios"},
    "archives": {"siren": _siren("22999001"), "name": "Archives départementales de l'Exemple", "system": "sae"},
    "bus": {"siren": _siren("13000997"), "name": "Opérateur du bus d'échanges", "system": "bus"},
    "urssaf": {"siren": _siren("13000996"), "name": "Urssaf de l'Exemple", "system": "attestations"},
    # The companies of COMPANIES that take part in the procurement, each signing as itself.
    "travaux": {"siren": _siren("80000001"), "name": "TRAVAUX PUBLICS DU VAL D'EXEMPLE", "system": "facturation"},
    "arpent": {"siren": _siren("80000002"), "name": "BUREAU D'ETUDES ARPENT", "system": "candidatures"},
    "imprimerie": {"siren": _siren("80000004"), "name": "IMPRIMERIE DES QUAIS", "system": "candidatures"},
}

COMPANIES = [
    # (SIREN seed, NIC seed, name, legal form, NAF, state, diffusion, natural person)
    ("80000001", "0001", "TRAVAUX PUBLICS DU VAL D'EXEMPLE", "5710", "42.11Z", "A", "O", False),
    ("80000002", "0001", "BUREAU D'ETUDES ARPENT", "5499", "71.12B", "A", "O", False),
    ("80000003", "0001", None, "1000", "43.21A", "A", "P", True),
    ("80000004", "0001", "IMPRIMERIE DES QUAIS", "5710", "18.12Z", "F", "O", False),
]




def company_siret(role: str) -> str:
    """The SIRET of the head office of a company role of ADMINISTRATIONS (NIC seed of COMPANIES)."""
    siren = ADMINISTRATIONS[role]["siren"]
    nic_seed = next(nic for seed, nic, *_ in COMPANIES if _siren(seed) == siren)
    return _siret(siren, nic_seed)


def sirene_documents() -> list[tuple[str, bytes]]:
    """One API Sirene JSON document per establishment, as INSEE serves them."""
    docs = []
    for seed, nic_seed, name, form, naf, state, diffusion, person in COMPANIES:
        siren = _siren(seed)
        siret = _siret(siren, nic_seed)
        unit = {
            "etatAdministratifUniteLegale": "A" if state == "A" else "C",
            "statutDiffusionUniteLegale": diffusion,
            "categorieJuridiqueUniteLegale": form,
            "denominationUniteLegale": name,
            "nomUniteLegale": "MARTIN" if person else None,
            "prenomUsuelUniteLegale": "CAMILLE" if person else None,
            "activitePrincipaleUniteLegale": naf,
            "nomenclatureActivitePrincipaleUniteLegale": "NAFRev2",
            "dateDernierTraitementUniteLegale": "2026-01-02T03:04:05",
        }
        doc = {"etablissement": {
            "siren": siren, "nic": siret[9:], "siret": siret, "statutDiffusionEtablissement": diffusion,
            "dateCreationEtablissement": "2012-04-01", "etablissementSiege": True,
            "dateDernierTraitementEtablissement": "2026-01-02T03:04:05", "uniteLegale": unit,
            "adresseEtablissement": {
                "numeroVoieEtablissement": "7", "typeVoieEtablissement": "RUE",
                "libelleVoieEtablissement": "DES ARTISANS", "codePostalEtablissement": "45999",
                "codeCommuneEtablissement": "45999", "libelleCommuneEtablissement": "SAINT-EXEMPLE-SUR-LOIRE"},
            "periodesEtablissement": [{"dateFin": None, "dateDebut": "2012-04-01",
                                       "etatAdministratifEtablissement": state,
                                       "activitePrincipaleEtablissement": naf,
                                       "nomenclatureActivitePrincipaleEtablissement": "NAFRev2"}],
        }}
        docs.append((f"sirene-{siret}.json", json.dumps(doc, ensure_ascii=False).encode()))
    return docs
