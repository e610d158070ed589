"""The retrieve steps of the Azure DICOM service's Python tutorial, as written there, against our
base URL (after its STOW steps). Decodes with requests_toolbelt and pydicom like the tutorial and
prints one JSON line per step."""
import json
import os
import sys
from io import BytesIO

import pydicom
import requests
import requests_toolbelt as tb

base_url = os.environ["DICOMWEB_BASE_URL"]
study_uid = "1.2.826.0.1.3680043.8.498.13230779778012324449356534479549187420"
series_uid = "1.2.826.0.1.3680043.8.498.45787841905473114233124723359129632652"
instance_uid = "1.2.826.0.1.3680043.8.498.47359123102728459884412887463296905395"
client = requests.session()


def report(step, response, **extra):
    print(json.dumps({"step": step, "status": response.status_code, **extra}))


def decode_multipart(response):
    mpd = tb.MultipartDecoder.from_response(response)
    parts = []
    for part in mpd.parts:
        content_type = part.headers[b"content-type"].decode()
        if content_type.startswith("application/dicom"):
            dcm = pydicom.dcmread(BytesIO(part.content))
            parts.append({"type": content_type, "patient": str(dcm.PatientName), "sop": dcm.SOPInstanceUID})
        else:
            parts.append({"type": content_type, "bytes": len(part.content)})
    return parts


headers = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
response = client.get(f"{base_url}/studies/{study_uid}", headers=headers)
report("study", response, parts=decode_multipart(response))

response = client.get(f"{base_url}/studies/{study_uid}/metadata", headers={"Accept": "application/dicom+json"})
report("study-metadata", response, count=len(response.json()))

response = client.get(f"{base_url}/studies/{study_uid}/series/{series_uid}", headers=headers)
report("series", response, parts=decode_multipart(response))

response = client.get(f"{base_url}/studies/{study_uid}/series/{series_uid}/metadata", headers={"Accept": "application/dicom+json"})
report("series-metadata", response, count=len(response.json()))

url = f"{base_url}/studies/{study_uid}/series/{series_uid}/instances/{instance_uid}"
response = client.get(url, headers={"Accept": "application/dicom; transfer-syntax=*"})
dcm = pydicom.dcmread(BytesIO(response.content))
report("instance", response, type=response.headers["content-type"], sop=dcm.SOPInstanceUID, rows=dcm.Rows, pixels=len(dcm.PixelData))

response = client.get(f"{url}/metadata", headers={"Accept": "application/dicom+json"})
report("instance-metadata", response, count=len(response.json()), patient=response.json()[0]["00100010"]["Value"][0]["Alphabetic"])

response = client.get(f"{url}/frames/1", headers={"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'})
report("frame", response, parts=decode_multipart(response))
