"""``mmquant``: the command line of the zoo.

mmquant zoo list                                   # named checkpoints (shipped and on the Hub)
mmquant zoo info optvq-mnist
mmquant publish OUTPUT_DIR --repo_id you/name      # upload a trained model with its generated card
mmquant publish OUTPUT_DIR --card_data hub_cards/NAME.yaml --local_dir checkpoints/NAME   # or write it locally
mmquant publish-metric psnr --repo_id you/psnr     # upload an evaluate module folder (a Space repo)
mmquant data build caption_mnist --config quad4 --output out/caption-mnist   # = mmquant-data build ...

Add --debug to any command for the traceback of an error (by default one line says what went wrong and the fix).
"""

from __future__ import annotations

import sys

from .arguments import make_parser

__all__ = ["main"]


def _publish(argv: list[str]) -> int:
    parser = make_parser("Upload a model folder with its card.", prog="mmquant publish")
    parser.add_argument("folder", help="a save_pretrained / training output folder")
    parser.add_argument("--repo_id", default=None, help="namespace/name of the Hub model repo (default: card_data's)")
    parser.add_argument(
        "--local_dir", default=None, help="write the files and card into this folder instead of uploading them"
    )
    parser.add_argument("--card_data", default=None, help="hub_cards/<name>.yaml (default: card from the folder)")
    parser.add_argument("--title", default=None, help="card title (default: from the repo id and model type)")
    parser.add_argument("--revision", default=None, help="branch to commit to (created when missing)")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--commit_message", default=None, help="commit message (default: one naming the folder)")
    args = parser.parse_args(argv)
    if args.repo_id is None and args.card_data is None:
        parser.error("--repo_id is required without --card_data (which names the repo)")
    from .hub.publish import export_folder, publish_folder

    if args.local_dir is not None:
        written = export_folder(args.folder, args.local_dir, card_data=args.card_data, repo_id=args.repo_id)
        print(f"wrote {len(written)} files into {args.local_dir}: {', '.join(p.name for p in written)}")
        return 0
    if args.repo_id is None:
        from .hub.cards import load_card_data

        args.repo_id = load_card_data(args.card_data)["repo_id"]
    info = publish_folder(
        args.folder,
        args.repo_id,
        card_data=args.card_data,
        title=args.title,
        private=args.private or None,
        revision=args.revision,
        commit_message=args.commit_message,
    )
    print(f"published {args.folder} to {args.repo_id} (commit {info.oid})")
    print(f'load it with: import mmquant; AutoModel.from_pretrained("{args.repo_id}")')
    return 0


def _publish_metric(argv: list[str]) -> int:
    parser = make_parser("Upload an evaluate metric module.", prog="mmquant publish-metric")
    parser.add_argument("name", help="psnr, ssim, codebook_usage, ...")
    parser.add_argument("--repo_id", required=True, help="namespace/name of the Space repo")
    parser.add_argument("--private", action="store_true", help="create the Space as private")
    args = parser.parse_args(argv)
    from .hub.publish import publish_metric

    info = publish_metric(args.name, args.repo_id, private=args.private or None)
    print(f"published the {args.name} metric to the Space {args.repo_id} (commit {info.oid})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The ``mmquant`` command; an expected user error is one line on stderr (``--debug`` for the traceback)."""
    from .user_errors import run_command

    return run_command(_main, argv, prog="mmquant")


def _main(argv: list[str]) -> int:
    commands = {"zoo", "publish", "publish-metric", "data"}
    if not argv or argv[0] not in commands:
        print(__doc__.strip(), file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    command, rest = argv[0], argv[1:]
    if command == "zoo":
        from .zoo import main as zoo_main

        return zoo_main(rest)
    if command == "data":
        from .data.cli import main as data_main

        return data_main(rest)
    if command == "publish-metric":
        return _publish_metric(rest)
    return _publish(rest)


if __name__ == "__main__":
    raise SystemExit(main())
