#!/usr/bin/python3
"""Writes the cards of the models scripts/train-models.sh trained, from what it measured.

  scripts/model_cards.py RUNS_DIR

RUNS_DIR holds, for each model NAME, NAME/card.json (written by train-models.sh: the commands,
the data, the training time and CPU) and the `cae eval --json` files it lists. Writes
models/NAME.md beside each model file, and docs/models.md with every card, so the cards cannot
drift from the runs: nothing in them is typed by hand but the sentences of card.json.
"""
import json, os, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def method(table, name):
    for m in table["methods"]:
        if m["name"] == name:
            return m
    return None


def region_or_whole(table):
    """PSNR inside the damage for spatial damage, of the whole photo for noise."""
    return "psnr_db_region" if table.get("region") else "psnr_db"


def per_image(table, name, key):
    m = method(table, name)
    return [img[key] for img in m["per_image"]] if m else []


def score_rows(entry, runs):
    """One table: cae (plain and adapted) against the best baseline, per damage."""
    lines = ["| damage | cae | cae adapted | best classical | lead | lead adapted | photos where cae leads |",
             "|---|---|---|---|---|---|---|"]
    for ev in entry["evals"]:
        table = json.load(open(os.path.join(runs, ev["json"])))
        key = region_or_whole(table)
        mkey = "psnr_db_region" if key == "psnr_db_region" else "psnr_db"
        cae = method(table, "cae")
        adapted = method(table, "cae adapted")
        baselines = [m for m in table["methods"] if m["name"] not in ("noisy", "cae", "cae adapted")]
        best = max(baselines, key=lambda m: m["mean"][mkey])
        # Per photo: the better of the classical methods on that photo, each at the setting tuned
        # on the validation photos (the table's), against cae's plain repair.
        classical = [max(v) for v in zip(*(per_image(table, m["name"], mkey) for m in baselines))]
        ours = per_image(table, "cae", mkey)
        ahead = sum(1 for a, b in zip(ours, classical) if a > b)
        lead = cae["mean"][mkey] - best["mean"][mkey]
        lead_adapted = (f"{adapted['mean'][mkey] - best['mean'][mkey]:+.2f} dB" if adapted else "—")
        lines.append(
            f"| {ev['label']} | {cae['mean'][mkey]:.2f} | "
            f"{adapted['mean'][mkey]:.2f}" if adapted else f"| {ev['label']} | {cae['mean'][mkey]:.2f} | —")
        lines[-1] += (f" | {best['name']} ({best['setting']}) {best['mean'][mkey]:.2f} | {lead:+.2f} dB | "
                      f"{lead_adapted} | {ahead} of {len(ours)} |")
    return lines


def card(name, runs):
    entry = json.load(open(os.path.join(runs, name, "card.json")))
    size = os.path.getsize(os.path.join(ROOT, "models", name + ".cae"))
    out = [f"## `{name}`: {entry['purpose']}", "", entry["summary"], "",
           f"- **File**: `models/{name}.cae`, {size / 1e6:.2f} MB; `cae info models/{name}.cae` prints "
           "its architecture and metadata.",
           f"- **Use**: `{entry['use']}`",
           f"- **Architecture**: {entry['architecture']}",
           f"- **Data**: {entry['data']}",
           f"- **Training**: `{entry['train_command']}`",
           f"- **Time and CPU**: {entry['train_seconds'] / 60:.1f} minutes on {entry['cpu']}, "
           f"{entry['threads']} threads, seed {entry['seed']}.",
           f"- **Chosen on**: {entry['chosen_on']}",
           "", f"Scores on the {entry['test_photos']} test photos (PSNR in dB, {entry['scored']}), "
           f"none of them used for any choice; `cae eval` commands below:", ""]
    out += score_rows(entry, runs)
    out += ["", "```sh"] + entry["eval_commands"] + ["```", ""]
    if entry.get("notes"):
        out += [entry["notes"], ""]
    return "\n".join(out)


def main():
    runs = sys.argv[1] if len(sys.argv) > 1 else "runs/models"
    names = sorted(d for d in os.listdir(runs) if os.path.exists(os.path.join(runs, d, "card.json")))
    cards = {n: card(n, runs) for n in names}
    for n, text in cards.items():
        with open(os.path.join(ROOT, "models", n + ".md"), "w") as f:
            f.write("# cae model card\n\n<!-- written by scripts/model_cards.py from "
                    "scripts/train-models.sh's runs; do not edit by hand -->\n\n" + text)
    with open(os.path.join(ROOT, "docs", "models.md"), "w") as f:
        f.write("# The models that ship with cae\n\n<!-- written by scripts/model_cards.py from "
                "scripts/train-models.sh's runs; do not edit by hand -->\n\n"
                "`cae models` lists them; `cae repair` and `cae denoise` use them when no `-m` is "
                "given (`-m NAME` picks one by name). Each was trained by `scripts/train-models.sh` "
                "from a fixed seed on the photos `scripts/setup-data.sh` pins by SHA-256 "
                "([data.md](data.md) gives each photo's licence), chosen on the validation photos "
                "and scored on the test photos, which nothing was tuned on.\n\n"
                + "\n".join(cards[n] for n in names))
    print("model_cards: wrote", ", ".join(f"models/{n}.md" for n in names), "and docs/models.md")


if __name__ == "__main__":
    main()
