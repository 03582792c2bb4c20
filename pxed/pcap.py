"""Placeholder until `pxed pcap` lands (issue 2, item 7)."""

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("captures", nargs="+")


def run(args: argparse.Namespace) -> int:
    return 1
