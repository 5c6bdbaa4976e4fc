"""Change control of an installed lakehouse: releases (releases.yml) and upgrade change records (ADR 0185-0187)."""
