"""The columns of the tables recsys reads, by name: a leaf that the data package's schema
(:mod:`recsys_core.data.schema`, which normalizes every source into them) and the validation
suite (which checks them) both use, so that neither package imports the other."""

COLUMNS = ("user", "item", "rating", "timestamp")
"""The interaction table: string ids, a float rating, epoch seconds (UTC)."""
ITEM_COLUMNS = ("item", "title", "genres")
"""The item metadata table, when a source has one (``genres`` ``|``-separated)."""
