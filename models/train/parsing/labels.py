"""LIP's 20 labels, CCP's 59 and the table between them (MODELS.md prints this table).

Special targets: SKIN is split by the person's geometry in prepare.py (face, arms, legs, or
background for neck and torso), SHOE by the nearer foot, LEG_COVER (stockings, tights: they show
the leg's shape and colour through) is labelled like bare leg.
"""

LIP = [
    "background", "hat", "hair", "glove", "sunglasses", "upper_clothes", "dress", "coat",
    "socks", "pants", "jumpsuits", "scarf", "skirt", "face", "left_arm", "right_arm",
    "left_leg", "right_leg", "left_shoe", "right_shoe",
]
NUM_CLASSES = len(LIP)
L = {name: i for i, name in enumerate(LIP)}

# Left/right pairs swapped by a horizontal flip (the person's own sides swap in the mirror).
FLIP_PAIRS = [(14, 15), (16, 17), (18, 19)]

SKIN, SHOE, LEG_COVER = "@skin", "@shoe", "@leg"

# CCP label name -> LIP label name (or one of the special targets above).
CCP_TO_LIP = {
    "null": "background",
    "accessories": "background",
    "bag": "background",
    "belt": "background",
    "blazer": "coat",
    "blouse": "upper_clothes",
    "bodysuit": "upper_clothes",
    "boots": SHOE,
    "bra": "upper_clothes",
    "bracelet": "background",
    "cape": "coat",
    "cardigan": "coat",
    "clogs": SHOE,
    "coat": "coat",
    "dress": "dress",
    "earrings": "background",
    "flats": SHOE,
    "glasses": "sunglasses",
    "gloves": "glove",
    "hair": "hair",
    "hat": "hat",
    "heels": SHOE,
    "hoodie": "upper_clothes",
    "intimate": "upper_clothes",
    "jacket": "coat",
    "jeans": "pants",
    "jumper": "upper_clothes",
    "leggings": "pants",
    "loafers": SHOE,
    "necklace": "background",
    "panties": "pants",
    "pants": "pants",
    "pumps": SHOE,
    "purse": "background",
    "ring": "background",
    "romper": "jumpsuits",
    "sandals": SHOE,
    "scarf": "scarf",
    "shirt": "upper_clothes",
    "shoes": SHOE,
    "shorts": "pants",
    "skin": SKIN,
    "skirt": "skirt",
    "sneakers": SHOE,
    "socks": "socks",
    "stockings": LEG_COVER,
    "suit": "coat",
    "sunglasses": "sunglasses",
    "sweater": "upper_clothes",
    "sweatshirt": "upper_clothes",
    "swimwear": "upper_clothes",
    "t-shirt": "upper_clothes",
    "tie": "upper_clothes",
    "tights": LEG_COVER,
    "top": "upper_clothes",
    "vest": "upper_clothes",
    "wallet": "background",
    "watch": "background",
    "wedges": SHOE,
}

# The coarse groups of the baseline: background / hair+hat / skin / upper clothes
# (incl. dress, coat) / lower clothes / shoes. Labels in no group (glove, sunglasses, scarf,
# socks) count as background there, as in the baseline.
COARSE = ["background", "hair", "skin", "upper", "lower", "shoes"]
LIP_TO_COARSE = [0] * NUM_CLASSES
for name, group in {
    "hat": 1, "hair": 1,
    "face": 2, "left_arm": 2, "right_arm": 2, "left_leg": 2, "right_leg": 2,
    "upper_clothes": 3, "dress": 3, "coat": 3, "jumpsuits": 3,
    "pants": 4, "skirt": 4,
    "left_shoe": 5, "right_shoe": 5,
}.items():
    LIP_TO_COARSE[L[name]] = group


def markdown_table() -> str:
    """The CCP -> LIP table as MODELS.md prints it (`python labels.py`)."""
    special = {SKIN: "split: `face` / `left_arm` / `right_arm` / `left_leg` / `right_leg` / "
                     "background (neck, torso)",
               SHOE: "`left_shoe` / `right_shoe` (nearer foot)",
               LEG_COVER: "`left_leg` / `right_leg` (the leg it covers)"}
    by_target: dict[str, list[str]] = {}
    for ccp, target in CCP_TO_LIP.items():
        key = special.get(target, f"`{target}`")
        by_target.setdefault(key, []).append(ccp)
    order = [f"`{name}`" for name in LIP] + list(special.values())
    rows = ["| LIP label | CCP labels |", "|---|---|"]
    for key in order:
        if key in by_target:
            rows.append(f"| {key} | {', '.join(by_target[key])} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
