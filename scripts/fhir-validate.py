#!/usr/bin/env python3
"""Validates FHIR R4 (4.0.1) JSON with an independent implementation: the `fhir.resources`
models from PyPI (pinned to 6.1.x, the R4 release line). Each argument is a JSON file holding
one resource or an array of resources. Prints one line per invalid resource; exit status 1 if
any is invalid."""
import json
import sys

import fhir.resources
from fhir.resources import construct_fhir_element

assert fhir.resources.__fhir_version__ == "4.0.1", fhir.resources.__fhir_version__

bad = 0
checked = 0
for path in sys.argv[1:]:
    with open(path) as f:
        data = json.load(f)
    for resource in data if isinstance(data, list) else [data]:
        checked += 1
        try:
            construct_fhir_element(resource["resourceType"], resource)
        except Exception as e:  # pydantic.ValidationError and KeyError alike
            bad += 1
            print(f"{resource.get('resourceType')}/{resource.get('id')}: {e}")
print(f"fhir.resources {fhir.resources.__version__} (FHIR {fhir.resources.__fhir_version__}): "
      f"{checked - bad} of {checked} resources valid")
sys.exit(1 if bad else 0)
