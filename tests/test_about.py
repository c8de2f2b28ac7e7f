"""Any project, served from anywhere: its own title and licence, the metadata and codebooks we ship."""

import os

from click.testing import CliRunner
from datasette.app import Datasette

from qualcode import cli, open_project
from qualcode.about import get_about
from qualcode.publish import METADATA_FILE, load_metadata

from .conftest import ROOT


def run(*args, **kwargs):
    return CliRunner().invoke(cli.cli, list(args), **kwargs)


def test_init_and_about_set_the_projects_own_words(tmp_path):
    db_path = str(tmp_path / "study.db")
    result = run("init", "--db", db_path, "--title", "Coaching study", "--license", "internal use only")
    assert result.exit_code == 0, result.output
    result = run("about", "--db", db_path)
    assert "title: Coaching study" in result.output and "license: internal use only" in result.output
    assert "description: (not set)" in result.output
    result = run("about", "--db", db_path, "--description", "Twelve interviews with coaches.", "--license", "")
    assert result.exit_code == 0
    db = open_project(db_path)
    assert get_about(db) == {"title": "Coaching study", "description": "Twelve interviews with coaches.",
                             "license": None, "license_url": None, "source": None, "source_url": None}
    data = load_metadata(None, db_path)
    assert data["title"] == "Coaching study" and data["description"] == "Twelve interviews with coaches."
    assert "license" not in data and "fictional" not in str({k: v for k, v in data.items() if k != "databases"})


def test_too_long_a_title_is_refused(tmp_path):
    db_path = str(tmp_path / "study.db")
    result = run("init", "--db", db_path, "--title", "x" * 10_001)
    assert result.exit_code == 1 and "10,001 characters" in result.output


async def test_any_project_gets_its_own_sites_in_the_matrix(tmp_path, monkeypatch):
    """A project with other sites than the sample's: the code × site query has a column for each."""
    monkeypatch.chdir(tmp_path)  # nothing in this folder: metadata and codebook come from the package
    db_path = str(tmp_path / "other.db")
    for site, name in (("North Campus", "a"), ("O'Brien Center", "b")):
        (tmp_path / f"{name}.txt").write_text(f"Interviewer: How is coaching going?\n\nAna: Our coach visits every week at {site}.\n")
        assert run("ingest", str(tmp_path / f"{name}.txt"), "--site", site, "--kind", "interview", "--db", db_path).exit_code == 0
    assert run("codebook", "load", "lessons", "--db", db_path).exit_code == 0
    for doc in ("a", "b"):
        assert run("code", f"{doc}:2", "support.coaching", "--coder", "Ana", "--create-coder", "--db", db_path).exit_code == 0
    ds = Datasette([db_path], metadata=load_metadata(None, db_path))
    response = await ds.client.get("/other/code_by_site_matrix.json?_shape=array")
    assert response.status_code == 200, response.text
    assert response.json() == [{"code_id": "support.coaching", "code_name": "Coaching fitted to the person",
                                "North Campus": 1, "O'Brien Center": 1, "total": 2}]
    page = (await ds.client.get("/")).text
    assert "<h1>other</h1>" in page and "fictional" not in page
    # The dashboard and the rendered codebook are there although no metadata file is in this folder.
    assert (await ds.client.get("/-/dashboards/findings")).status_code == 200
    assert "<strong>Definition.</strong>" in (await ds.client.get("/other/codebook_tree?_layout=table")).text


def test_metadata_and_codebooks_ship_inside_the_package():
    assert METADATA_FILE.is_file() and METADATA_FILE.parent.name == "qualcode"
    assert (ROOT / "datasette-metadata.yml").resolve() == METADATA_FILE.resolve()


def test_codebook_load_by_name_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db_path = str(tmp_path / "p.db")
    result = run("codebook", "load", "lessons", "--db", db_path)
    assert result.exit_code == 0, result.output
    assert "Loaded codebook 'Lessons for continuous improvement'" in result.output
    assert run("codebook", "validate", "lessons").exit_code == 0


def test_a_missing_codebook_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("codebook", "load", "lesons", "--db", str(tmp_path / "p.db"))
    assert result.exit_code == 1
    line = result.output.strip()
    assert len(line.splitlines()) == 1
    assert f"looked for the file {os.path.join(str(tmp_path.resolve()), 'lesons')}" in line
    assert "packaged codebook named 'lesons'" in line and "packaged names: facilitation, lessons" in line
    assert not (tmp_path / "p.db").exists()
