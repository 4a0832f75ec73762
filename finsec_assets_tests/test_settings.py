"""Settings: the lake's catalog URL is validated up front with a message a user can act on."""

import pytest

from finsec_assets.settings import Settings, SettingsError


def test_default_catalog_is_sqlite_in_finsec_home(tmp_path):
    s = Settings.from_env({"FINSEC_HOME": str(tmp_path / "home")})
    assert s.catalog_url == f"sqlite:///{tmp_path / 'home' / 'lake.sqlite'}"
    assert s.lake_data_path == f"{tmp_path / 'home' / 'objects'}/lake/"


def test_catalog_urls(tmp_path):
    env = {"FINSEC_HOME": str(tmp_path)}
    pg = "postgres://finsec:secret@db:5432/finsec_lake"
    assert Settings.from_env({**env, "FINSEC_CATALOG_URL": pg}).catalog_url == pg
    assert Settings.from_env({**env, "FINSEC_CATALOG_URL": f"sqlite:///{tmp_path}/x.sqlite"}).catalog_url == \
        f"sqlite:///{tmp_path}/x.sqlite"
    s3 = Settings.from_env({**env, "FINSEC_OBJECT_STORE_URL": "s3://bucket/prefix/"})
    assert s3.lake_data_path == "s3://bucket/prefix/lake/"


@pytest.mark.parametrize("url, message", [
    ("mysql://h/db", "sqlite:///path/lake.sqlite .* postgres://"),
    ("postgres://host-only", "name the host and database"),
    ("postgresql:///db", "name the host and database"),
    ("sqlite:///", "name the SQLite file"),
])
def test_bad_catalog_urls_name_the_variable(tmp_path, url, message):
    with pytest.raises(SettingsError, match=f"FINSEC_CATALOG_URL=.*{message}"):
        Settings.from_env({"FINSEC_HOME": str(tmp_path), "FINSEC_CATALOG_URL": url})
