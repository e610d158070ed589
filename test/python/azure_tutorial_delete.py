"""The change feed probe and the three deletes of the Azure DICOM service's Python tutorial, as
written there, against our base URL; then the same deletes again. One JSON line per request."""
import json
import os

import requests

base_url = os.environ["DICOMWEB_BASE_URL"]
study_uid = "1.2.826.0.1.3680043.8.498.13230779778012324449356534479549187420"
series_uid = "1.2.826.0.1.3680043.8.498.45787841905473114233124723359129632652"
instance_uid = "1.2.826.0.1.3680043.8.498.47359123102728459884412887463296905395"
client = requests.session()

response = client.get(f"{base_url}/changefeed")
print(json.dumps({"step": "changefeed", "status": response.status_code, "entries": len(response.json())}))

urls = [
    f"{base_url}/studies/{study_uid}/series/{series_uid}/instances/{instance_uid}",
    f"{base_url}/studies/{study_uid}/series/{series_uid}",
    f"{base_url}/studies/{study_uid}",
]
for attempt in ("first", "again"):
    for url in urls:
        response = client.delete(url)
        print(json.dumps({"step": f"delete-{attempt}", "status": response.status_code}))
