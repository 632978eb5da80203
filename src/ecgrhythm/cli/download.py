"""`ecgrhythm download`: fetch a public data set."""

from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser(
        "download",
        help="fetch a public data set (PhysioNet) into a folder",
        description="Fetch a public ECG data set from PhysioNet (or a mirror) into DIR: its RECORDS index, every record's "
        "header and signal file, and its labels (REFERENCE.csv), which 'ecgrhythm train --data DIR', 'evaluate --data DIR' "
        "and 'classify DIR' then read. Files already there are kept, so an interrupted download continues where it stopped, and RECORDS and REFERENCE.csv "
        "keep listing the records already there (a smaller --limit never shrinks a folder).",
    )
    p.add_argument("name", choices=["cinc2017"], help="data set")
    p.add_argument("dest", metavar="DIR", help="folder to write (an interrupted download continues where it stopped)")
    p.add_argument("--limit", type=int, help="fetch only the first N records")
    p.add_argument("--base-url", help="mirror URL of the folder holding RECORDS (default: PhysioNet)")


def run(args):
    from ecgrhythm.records.download import download

    result = download(args.name, args.dest, base_url=args.base_url, limit=args.limit)
    print(f"{len(result.records)} records in {result.folder} ({result.fetched} files fetched, {result.skipped} already there)")
    return 0
