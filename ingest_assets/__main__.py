"""``python -m ingest_assets`` is ``ingest-assets``."""

import sys

from ingest_assets.cli import main

sys.exit(main())
