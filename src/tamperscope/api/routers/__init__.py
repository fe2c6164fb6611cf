"""One router per resource: assets, the case page's views, jobs, batches, reports, audit."""
