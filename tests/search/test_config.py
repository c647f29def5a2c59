"""Search options: checked before anything runs, stored without credentials."""

from __future__ import annotations

import json

from nasfcn.search import SearchConfig


def test_the_stored_config_holds_no_credential() -> None:
    config = SearchConfig(
        space="space.yaml",
        db="postgresql+psycopg://alice@db/nas?password=Zq7s3cret",
        storage_path="s3://AKIAKEY:Zq7s3cret@bucket/runs",
    )
    stored = config.as_dict()
    assert "Zq7s3cret" not in json.dumps(stored)
    assert stored["db"] == "postgresql+psycopg://alice@db/nas?password=***"
    assert stored["storage_path"] == "s3://AKIAKEY:***@bucket/runs"
