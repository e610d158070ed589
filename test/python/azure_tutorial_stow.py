"""The STOW steps of the Azure DICOM service's Python tutorial, as written there, run against
our base URL. Prints one JSON line per request: the status and the parsed body."""
import json
import os
import sys
from pathlib import Path

import requests
from urllib3.filepost import choose_boundary, encode_multipart_formdata

base_url = os.environ["DICOMWEB_BASE_URL"]
path_to_dicoms_dir = sys.argv[1]
client = requests.session()


def encode_multipart_related(fields, boundary=None):
    if boundary is None:
        boundary = choose_boundary()
    body, _ = encode_multipart_formdata(fields, boundary)
    content_type = str("multipart/related; boundary=%s" % boundary)
    return body, content_type


def report(response):
    body = response.json() if response.content else None
    print(json.dumps({"status": response.status_code, "body": body}))


# Store instances using multipart/related
filepath = Path(path_to_dicoms_dir).joinpath("blue-circle.dcm")
with open(filepath, "rb") as reader:
    rawfile = reader.read()
files = {"file": ("dicomfile", rawfile, "application/dicom")}
body, content_type = encode_multipart_related(fields=files)
headers = {"Accept": "application/dicom+json", "Content-Type": content_type}
report(client.post(f"{base_url}/studies", body, headers=headers, verify=False))

# Store instances for a specific study (the tutorial's code posts to /studies)
filepath_red = Path(path_to_dicoms_dir).joinpath("red-triangle.dcm")
filepath_green = Path(path_to_dicoms_dir).joinpath("green-square.dcm")
with open(filepath_red, "rb") as reader:
    rawfile_red = reader.read()
with open(filepath_green, "rb") as reader:
    rawfile_green = reader.read()
files = {
    "file_red": ("dicomfile", rawfile_red, "application/dicom"),
    "file_green": ("dicomfile", rawfile_green, "application/dicom"),
}
body, content_type = encode_multipart_related(fields=files)
headers = {"Accept": "application/dicom+json", "Content-Type": content_type}
report(client.post(f"{base_url}/studies", body, headers=headers, verify=False))

# Store single instance (non-standard): 409 because it was uploaded above
filepath = Path(path_to_dicoms_dir).joinpath("blue-circle.dcm")
with open(filepath, "rb") as reader:
    body = reader.read()
headers = {"Accept": "application/dicom+json", "Content-Type": "application/dicom"}
report(client.post(f"{base_url}/studies", body, headers=headers, verify=False))
