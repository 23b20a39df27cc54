"""The export-folder daemon: watcher, workers, service, dashboard and service-file writer."""
