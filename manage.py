#!/usr/bin/env python
"""Django's command-line utility for the Petrosa CIO control plane."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cio_site.settings")
    from django.core.management import execute_from_command_line

    from cio_site.log_component import stamp_entry_point

    stamp_entry_point()  # a command's output lines are stamped like its log lines (docs/logging.md)

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
