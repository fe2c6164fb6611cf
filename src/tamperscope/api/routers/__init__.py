"""One router per resource: assets, jobs, reports, audit."""
