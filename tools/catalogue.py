# tools/catalogue.py: the deterministic product and retailer catalogue shared by the fake
# enrichment services (tools/fakes.py) and the data generator (tools/gen.py), so the generator's
# ground truth knows exactly what the fakes will answer.
#
# Design: everything is a pure function of the id's number; no state, no randomness that
# depends on the order of calls. CRC-32 of a salted string picks among fixed word lists, so the
# answer is the same on every machine and Python version.
#   FIDO     "F" + 6 digits (F000001 ...). Unknown to the FIDO service when number % 10 == 7
#            (10 %). Known ones get a name, a brand and a category path of 1-3 levels taken from
#            CATEGORY_TREE (top -> middle -> leaf), so many products share categories; about
#            1 in 41 known products has no categories at all. Two middle categories share the name
#            "Other" under different tops (same name, different path).
#   Retailer "R" + 4 digits (R0001 ...). Unknown when number % 10 == 3 (10 %).
# A few names carry non-ASCII letters, apostrophes and quotes, to exercise escaping end to end.
import functools
import re
import zlib

CATEGORY_TREE = {
    "Beverages": {"Soft Drinks": ["Cola", "Lemon-Lime", "Root Beer"],
                  "Coffee & Tea": ["Ground Coffee", "Tea Bags"],
                  "Water": ["Sparkling", "Still"]},
    "Snacks": {"Chips": ["Potato Chips", "Tortilla Chips"],
               "Candy": ["Chocolate", "Gummies"],
               "Other": ["Pretzels"]},
    "Dairy": {"Milk": ["Whole Milk", "Oat Milk"],
              "Cheese": ["Cheddar", "Crème Fraîche"],
              "Yogurt": ["Greek Yogurt"]},
    "Household": {"Cleaning": ["Detergent", "Dish Soap"],
                  "Paper": ["Paper Towels", "Toilet Paper"],
                  "Other": ["Batteries"]},
    "Personal Care": {"Hair": ["Shampoo", "Conditioner"],
                      "Oral Care": ["Toothpaste"]},
}
BRANDS = ["Acme", "Globex", "Initech", "Umbrella", "Trader Joe's", "Nestlé", "Hooli",
          "Soylent", "Stark \"Premium\"", "Wayne Foods", "Pied Piper", "Vandelay"]
ADJECTIVES = ["Classic", "Zero", "Organic", "Family Size", "Light", "Extra", "Original", "Mini"]
RETAILER_NAMES = ["Acme Foods", "Shop'n Save", "MegaMart", "Corner Store", "Café Market",
                  "Discount Depot", "FreshCo", "Big Box", "Pharma Plus", "Gas & Go"]
STORE_TYPES = ["GROCERY", "CONVENIENCE", "PHARMACY", "CLUB", "GAS_STATION", "MASS_MERCHANT"]

# Flattened leaves, fixed order: (top, middle, leaf).
_LEAVES = [(t, m, leaf) for t, mids in CATEGORY_TREE.items() for m, leaves in mids.items()
           for leaf in leaves]
_FIDO_RE = re.compile(r"^F(\d{6})$")
_RETAILER_RE = re.compile(r"^R(\d{4})$")


def _h(salt, n):
    return zlib.crc32(f"{salt}:{n}".encode())


def fido(n):
    return f"F{n:06d}"


def retailer_id(n):
    return f"R{n:04d}"


def fido_known(n):
    return n % 10 != 7


def retailer_known(n):
    return n % 10 != 3


def product_categories(n):
    """Category path, top first (a list of names; may be empty)."""
    if (n // 10) % 41 == 40:
        return []
    top, mid, leaf = _LEAVES[_h("cat", n) % len(_LEAVES)]
    depth = (1, 2, 3, 3, 3, 2)[_h("depth", n) % 6]
    return [top, mid, leaf][:depth]


@functools.lru_cache(maxsize=None)
def product(fido_str):
    """The FIDO service's answer for a fido string, or None when it does not know it.
    Cached: callers must not modify the returned dict."""
    m = _FIDO_RE.match(fido_str or "")
    if not m:
        return None
    n = int(m.group(1))
    if n == 0 or not fido_known(n):
        return None
    cats = product_categories(n)
    noun = cats[-1] if cats else "Assorted Goods"
    name = f"{noun} {ADJECTIVES[_h('adj', n) % len(ADJECTIVES)]} #{n}"
    return {"fido": fido_str, "name": name, "brand": BRANDS[_h("brand", n) % len(BRANDS)],
            "categories": cats}


@functools.lru_cache(maxsize=None)
def retailer(rid):
    """The Retailer Service's answer for a retailer id, or None when it does not know it.
    Cached: callers must not modify the returned dict."""
    m = _RETAILER_RE.match(rid or "")
    if not m:
        return None
    n = int(m.group(1))
    if n == 0 or not retailer_known(n):
        return None
    return {"retailer_id": rid,
            "name": f"{RETAILER_NAMES[_h('rname', n) % len(RETAILER_NAMES)]} {n}",
            "store_type": STORE_TYPES[_h('stype', n) % len(STORE_TYPES)]}


def category_paths(categories):
    """Every path prefix of a category list, as the graph keys them: names joined by ' > '."""
    return [" > ".join(categories[:i]) for i in range(1, len(categories) + 1)]
