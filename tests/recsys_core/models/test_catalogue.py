"""The README's table of capabilities is generated from the classes' declarations."""

from pathlib import Path

from recsys_core.models.catalogue import capabilities_rows, capabilities_table
from recsys_core.models.registry import available

ROOT = Path(__file__).resolve().parents[3]


def test_the_readme_table_is_generated_from_the_declarations():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- capabilities-table: start -->\n")[1].split(
        "<!-- capabilities-table: end -->"
    )[0]
    assert block == capabilities_table(), (
        "README.md's table of capabilities is out of step with the models' declarations; "
        "paste the output of: python -c 'from recsys_core.models.catalogue import "
        'capabilities_table; print(capabilities_table(), end="")\''
    )


def test_a_row_per_family_read_from_its_class():
    rows = {row[0].strip("`"): row for row in capabilities_rows()}
    assert sorted(rows) == available()
    assert rows["ease"][1:] == ("ranking", "item-item", "-", "-", "-")
    assert rows["als"][1:] == ("ranking, rating", "factors", "yes", "scored", "-")
    assert rows["spark-als"][4] == "fitted" and rows["content"][5] == "yes"
