"""`digitrec models`: the architectures and the named recipes, as two tables."""

from __future__ import annotations

from digitrec.cli.common import _table


def add_parser(verbs) -> None:
    verbs.add_parser("models", help="list architectures and recipes").set_defaults(func=cmd_models)


def cmd_models(args) -> int:
    from digitrec.models import architectures
    from digitrec.models.recipes import RECIPES

    nets = architectures
    rows = [[name, f"{nets.count_parameters(nets.create_model(name)):,}", nets.describe(name)]
            for name in nets.list_models()]
    print(_table(rows, ["name", "parameters", "description"]))
    recipes = [[name, r.arch, f"{r.steps} steps" if r.steps else r.epochs, r.batch_size, r.lr,
                r.views] for name, r in RECIPES.items()]
    print()
    print(_table(recipes, ["recipe", "arch", "epochs", "batch", "lr", "views"]))
    print("(a budget in steps becomes whole epochs: 3000 steps are 7 epochs of MNIST at batch 128;")
    print(" views: how many times the saved model reads each digit; 5: as given and shifted a pixel each way;")
    print(" any recipe field can be changed with `digitrec train --set key=value`)")
    return 0
