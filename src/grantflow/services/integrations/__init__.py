"""Connected AWS Organizations: lifecycle, connectors, sync ingest, session audit."""
