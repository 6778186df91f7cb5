"""``zoo plan``: derive a training recipe from a dataset's data and say why.

Read DATASET's train split once (its fingerprint, cached; see 'zoo datasets fingerprint'), price MODEL on it and
print the plan: native-scale patch, resize, batch, sampling, augmentation, loss, evaluation and the budget in steps,
each with its reason. Nothing depends on the dataset's name, so a folder of your own images gets a plan from the
same rules. 'zoo train --plan auto' and 'zoo bench' train with it. Other --name value options are dataset options
(e.g. --fov true); a region of interest is switched on where the data has one.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from zoo import api
from zoo.commands._table import command_doc

_HELP, _DESCRIPTION = command_doc(__doc__)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("plan", parents=[common], help=_HELP, description=_DESCRIPTION)
    p.add_argument("dataset", help="registered dataset name (or a folder under --data-dir)")
    p.add_argument("--model", default="unet", help="the model planned for: its cost and stride (default unet)")
    p.add_argument("--width", type=int, help="the model option 'width'")
    p.add_argument("--model-opt", action="append", default=[], metavar="K=V", help="a model option")
    p.add_argument("--dataset-opt", action="append", default=[], metavar="K=V", help="a dataset option")
    p.add_argument("--budget", metavar="B", help="training budget: '135 tflops', '450 steps', '20 epochs' or "
                                                 "'10 min' (default: the planner's, 100 tflops)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps: the device limits planned for "
                                                    "(default auto)")
    p.add_argument("--json", action="store_true", help="print the plan and the recipe settings it sets as JSON")
    p.set_defaults(run=run, accepts_options=True)


def run(args: argparse.Namespace, options: dict[str, Any]) -> int:
    layer = api.recipe_flags_layer({}, model_opt=args.model_opt, dataset_opt=args.dataset_opt, width=args.width)
    dp = api.plan(args.dataset, model=args.model, model_options=layer["model"], budget=args.budget,
                  device=args.device, dataset_options={**layer["dataset"], **options})
    settings = api.plan_layer(dp.plan)
    if args.json:
        print(json.dumps({"plan": dp.plan.to_dict(), "dataset_options": dict(dp.dataset_options),
                          "dataset_options_set": dict(dp.set_options), "train": settings}, indent=2, default=str))
        return 0
    print(api.format_plan(dp.plan))
    if dp.set_options:
        print(f"  dataset options set by the plan: {', '.join(f'{k}={v}' for k, v in dp.set_options.items())}")
    given = [f"--model {args.model}"] + ([f"--width {args.width}"] if args.width is not None else [])
    given += [f"--model-opt {o}" for o in args.model_opt] + [f"--dataset-opt {o}" for o in args.dataset_opt]
    given += [f"--{k.replace('_', '-')} {v}" for k, v in options.items()]
    budget = f" --budget {args.budget!r}" if args.budget else ""
    print(f"train it: zoo train {' '.join(given)} --dataset {args.dataset} --plan auto{budget}")
    return 0
