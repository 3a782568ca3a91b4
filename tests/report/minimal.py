"""Small valid WSJF documents for tests to mutate (fresh copies on every call)."""

from __future__ import annotations

import copy
from typing import Any

_UUT: dict[str, Any] = {
    "id": "3f1c2b1e-9a7d-4c55-9b0e-2d4f7e6a1b20",
    "type": "T",
    "pn": "PCBA-100",
    "sn": "SN000123",
    "rev": "A",
    "processCode": 10,
    "result": "P",
    "machineName": "STATION-01",
    "location": "Line 1",
    "purpose": "Production",
    "start": "2026-02-01T09:15:00.000+01:00",
    "startUTC": "2026-02-01T08:15:00.000Z",
    "uut": {"user": "op1", "execTime": 12.5},
    "miscInfos": [{"description": "Firmware", "text": "1.2.3"}],
    "subUnits": [],
    "root": {
        "id": 1,
        "group": "M",
        "stepType": "SequenceCall",
        "name": "MainSequence Callback",
        "status": "P",
        "totTime": 12.5,
        "seqCall": {"path": "main.seq", "name": "MainSequence Callback", "version": "1.0.0"},
        "steps": [
            {
                "id": 2,
                "group": "M",
                "stepType": "ET_NLT",
                "name": "VCC",
                "status": "P",
                "numericMeas": [
                    {
                        "compOp": "GELE",
                        "value": 5.02,
                        "lowLimit": 4.9,
                        "highLimit": 5.1,
                        "unit": "V",
                        "status": "P",
                    }
                ],
            },
            {
                "id": 3,
                "group": "M",
                "stepType": "ET_SVT",
                "name": "Firmware",
                "status": "P",
                "stringMeas": [
                    {"compOp": "CASESENSIT", "value": "1.2.3", "limit": "1.2.3", "status": "P"}
                ],
            },
            {
                "id": 4,
                "group": "M",
                "stepType": "ET_MPFT",
                "name": "LEDs",
                "status": "P",
                "booleanMeas": [{"name": "red", "status": "P"}, {"name": "green", "status": "P"}],
            },
        ],
    },
}

_UUR: dict[str, Any] = {
    "id": "83ac0b8e-b575-4004-94de-f905774c3ed8",
    "type": "R",
    "pn": "MODULE",
    "sn": "M-1",
    "rev": "A",
    "processCode": 500,
    "result": "P",
    "machineName": "RepairStation",
    "location": "TestLab",
    "purpose": "Repair",
    "start": "2025-12-21T23:01:45.472254+01:00",
    "uur": {"user": "RepairOperator", "processCode": 90},
    "subUnits": [
        {
            "partType": "Main",
            "pn": "MODULE",
            "sn": "M-1",
            "rev": "A",
            "idx": 0,
            "failures": [{"category": "Component", "code": "Burned Component", "comRef": "U1"}],
        }
    ],
}


def uut() -> dict[str, Any]:
    """A fresh valid test (T) report document."""
    return copy.deepcopy(_UUT)


def uur() -> dict[str, Any]:
    """A fresh valid repair (R) report document."""
    return copy.deepcopy(_UUR)
