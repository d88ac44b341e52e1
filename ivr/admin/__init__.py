"""The HTTP side: health, metrics, journeys, KPIs, reload, emergency."""
