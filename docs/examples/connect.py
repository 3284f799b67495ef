"""List Cloud Storage objects through airlock with an endpoint override."""
import datetime
import os
from pathlib import Path

import google.auth.credentials
from google.cloud import storage


class AirlockToken(google.auth.credentials.Credentials):
    """Reads the token `airlock login` (or the kubelet) keeps fresh."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def refresh(self, request):
        self.token = Path(self.path).read_text().strip()
        # Read the file again in a minute: it is refreshed before expiry.
        self.expiry = datetime.datetime.utcnow() + datetime.timedelta(minutes=1)


domain = os.environ["AIRLOCK_DOMAIN"]  # e.g. airlock.acme.example
client = storage.Client(
    project="acme-dev",
    credentials=AirlockToken(os.environ["AIRLOCK_TOKEN_FILE"]),
    client_options={"api_endpoint": f"https://storage.{domain}"},
)
for blob in client.list_blobs("acme-dev-builds", prefix="release/"):
    print("object", blob.name)
