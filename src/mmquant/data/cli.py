"""``mmquant-data``: prepare the project's datasets offline, export them, publish them.

    mmquant-data list
    mmquant-data build caption_mnist --config quad4 --output out/caption-mnist                 # Parquet + card
    mmquant-data build caption_mnist --config quad4_degree --output out/caption-mnist
    mmquant-data build caption_mnist --config quad2 --set seed=1 --num_examples train=1000 test=200 --output out/q2
    mmquant-data build flowers102_captions --data_dir /data/flowers --output out/flowers --format arrow
    mmquant-data build caption_mnist --config quad4 --output out/cm --push_to_hub me/caption-mnist

``--format parquet`` (default) writes ``<output>/<config>/<split>-*.parquet`` and the generated dataset card
``<output>/README.md``, which ``datasets.load_dataset("<output>", "<config>")`` reads back; ``--format arrow``
writes ``DatasetDict.save_to_disk`` output to ``<output>/<config>`` (``datasets.load_from_disk``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..limits import MAX_NUM_PROC

__all__ = ["main"]


def _key_values(pairs: list[str], option: str) -> dict:
    import yaml

    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"{option} {pair!r}: expected key=value.")
        values[key] = yaml.safe_load(value)
    return values


def _card_data(builder: str) -> Path | None:
    """``<builder>/card_data.yaml`` beside the builder script (package data), when there is one."""
    from .builders import dataset_scripts_dir

    card_data = dataset_scripts_dir() / builder / "card_data.yaml"
    return card_data if card_data.exists() else None


def _build(args) -> int:
    from .builders import build_dataset
    from .export import export_parquet, push_dataset

    overrides = _key_values(args.set or [], "--set")
    if args.num_examples:
        overrides["num_examples"] = _key_values(args.num_examples, "--num_examples")
    dataset = build_dataset(
        args.name,
        args.config,
        data_dir=args.data_dir,
        cache_dir=args.cache_dir,
        num_proc=args.num_proc,
        **overrides,
    )
    config = args.config or "default"
    print(dataset)
    card_data = _card_data(args.name)
    if args.output:
        if args.format == "parquet":
            for path in export_parquet(dataset, args.output, config_name=config, card_data=card_data):
                print(f"wrote {path}")
        else:
            target = Path(args.output) / config
            dataset.save_to_disk(str(target))
            print(f"wrote {target}")
    if args.push_to_hub:
        repo_id = push_dataset(dataset, args.push_to_hub, config, card_data=card_data, private=args.private)
        print(f"pushed {config} to the dataset repo {repo_id}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The ``mmquant-data`` command; an expected user error is one line on stderr (``--debug`` for the traceback)."""
    from ..user_errors import run_command

    return run_command(_main, argv, prog="mmquant-data")


def _main(argv: list[str]) -> int:
    from ..arguments import HelpFormatter, make_parser

    parser = make_parser(__doc__, prog="mmquant-data")
    commands = parser.add_subparsers(dest="command", required=True)
    sub = {"formatter_class": HelpFormatter, "allow_abbrev": False}
    commands.add_parser("list", help="list the dataset builders", **sub)
    build = commands.add_parser("build", help="prepare a dataset (offline), export and/or push it", **sub)
    build.add_argument("name", help="builder name (see `mmquant-data list`)")
    build.add_argument("--config", default=None, help="builder config, e.g. quad4 or quad4_degree")
    build.add_argument("--data_dir", default=None, help="folder with the original files (local-folder builders)")
    build.add_argument("--output", default=None, help="export folder")
    build.add_argument(
        "--format",
        choices=["parquet", "arrow"],
        default="parquet",
        help="Parquet in the Hub's layout, or save_to_disk",
    )
    build.add_argument("--cache_dir", default=None, help="datasets cache (default: ~/.cache/huggingface/datasets)")
    build.add_argument("--set", nargs="*", metavar="FIELD=VALUE", help="override config fields, e.g. seed=1")
    build.add_argument("--num_examples", nargs="*", metavar="SPLIT=N", help="rows per split (generated datasets)")
    build.add_argument(
        "--num_proc", type=int, default=None, help="processes preparing the dataset (>= 1; default: one)"
    )
    build.add_argument("--push_to_hub", default=None, metavar="REPO_ID", help="also push Parquet + card to this repo")
    build.add_argument("--private", action="store_true", help="create the pushed repo as private")
    args = parser.parse_args(argv)
    if getattr(args, "num_proc", None) is not None and not 1 <= args.num_proc <= MAX_NUM_PROC:
        parser.error(f"--num_proc {args.num_proc}: expected 1 to {MAX_NUM_PROC} worker processes (or leave it unset).")
    if getattr(args, "data_dir", None) is not None and not Path(args.data_dir).is_dir():
        parser.error(f"--data_dir {args.data_dir}: not a folder; give the folder of the original dataset files.")
    if args.command == "list":
        from .builders import list_builders, load_builder_class

        for name in list_builders():
            configs = [c.name for c in load_builder_class(name).BUILDER_CONFIGS] or ["default"]
            print(f"{name}: {', '.join(configs)}")
        return 0
    if args.command == "build" and not (args.output or args.push_to_hub):
        print("note: no --output or --push_to_hub given; the dataset is only prepared in the cache.", file=sys.stderr)
    return _build(args)


if __name__ == "__main__":
    raise SystemExit(main())
