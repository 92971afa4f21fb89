"""The report's words, per language (``lang``): English and French, the working
languages of the East African Community's customs administrations."""

from __future__ import annotations

from tracking_api.schemas.exports import Lang

LABELS: dict[Lang, dict[str, str]] = {
    "en": {
        "title": "Shipment report", "reference": "Reference", "mrn": "MRN", "vehicle": "Vehicle",
        "operator": "Operator", "risk": "Risk level", "reasons": "Risk reasons", "status": "Status",
        "tracker": "Tracker", "seals": "E-seals", "deadline": "Deadline", "generated": "Generated at",
        "by": "by", "itinerary": "Itinerary", "office": "Office", "role": "Role", "country": "Country",
        "planned": "Planned", "arrived": "Arrived", "departed": "Departed", "timeline": "Timeline",
        "at": "At", "event": "Event", "detail": "Detail", "map": "Map", "alerts": "Alerts", "type": "Type",
        "severity": "Severity", "started": "Started", "ended": "Ended", "outcome": "Outcome", "who": "Who",
        "seal_events": "Seal events", "device": "Device", "actions": "Officers' actions (audit log)",
        "actor": "Actor", "action": "Action", "object": "Object", "hash": "Audit hash (SHA-256 chain)",
        "more": "{n} more not shown", "none": "None.", "track": "{fixes} fixes, {drawn} drawn",
        "number": "#",
    },
    "fr": {
        "title": "Rapport d'envoi", "reference": "Reference", "mrn": "MRN", "vehicle": "Vehicule",
        "operator": "Operateur", "risk": "Niveau de risque", "reasons": "Motifs du risque", "status": "Statut",
        "tracker": "Traceur", "seals": "Scelles electroniques", "deadline": "Delai", "generated": "Genere le",
        "by": "par", "itinerary": "Itineraire", "office": "Bureau", "role": "Role", "country": "Pays",
        "planned": "Prevu", "arrived": "Arrivee", "departed": "Depart", "timeline": "Chronologie",
        "at": "Date", "event": "Evenement", "detail": "Detail", "map": "Carte", "alerts": "Alertes",
        "type": "Type", "severity": "Gravite", "started": "Debut", "ended": "Fin", "outcome": "Issue",
        "who": "Qui", "seal_events": "Evenements des scelles", "device": "Appareil",
        "actions": "Actions des agents (journal d'audit)", "actor": "Agent", "action": "Action",
        "object": "Objet", "hash": "Empreinte d'audit (chaine SHA-256)", "more": "{n} de plus non affiches",
        "none": "Aucun.", "track": "{fixes} positions, {drawn} tracees",
        "number": "#",
    },
}
